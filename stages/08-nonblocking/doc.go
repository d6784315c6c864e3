// Stage 8 of eXpServer: the four reversing ports again, with non-blocking
// client sockets. A connection no longer sends its reply on the spot: it
// queues the reply and sends it when epoll reports the socket writable, so a
// client that never reads can no longer stall everybody else.
//
// The price, shown on purpose: epoll is still level-triggered, so an idle
// connection is reported writable on every wait and the process spins at
// 100 % CPU; and replies to a client that never reads queue up without limit.
// Stages 9 and 10 fix one each.
//
// Usage: stage-8 [-host 0.0.0.0] [-ports 8001,8002,8003,8004] [ignored]
package main

// about is what -h prints under the usage line: what this stage does.
const about = "eXpServer stage 8: every port answers each chunk it receives reversed."
