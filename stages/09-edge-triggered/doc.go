// Stage 9 of eXpServer: the four reversing ports, now on edge-triggered
// epoll. epoll reports a change of readiness once; the connection remembers
// it in two flags, and the loop, before it waits, receives and sends for
// every connection whose flags say it can. When nothing is ready the loop
// blocks, so an idle server uses no CPU.
//
// Replies to a client that never reads still queue up without limit; stage
// 10's pipes bound them.
//
// Usage: stage-9 [-host 0.0.0.0] [-ports 8001,8002,8003,8004] [ignored]
package main

// about is what -h prints under the usage line: what this stage does.
const about = "eXpServer stage 9: every port answers each chunk it receives reversed."
