// Stage 7 of eXpServer: the same four reversing ports as stage 6, now built
// around a core that owns everything and a loop module that dispatches each
// event straight to the callback registered for it, with no search.
//
// SIGINT or SIGTERM shuts the server down in order (connections, listeners,
// loop) and exits with status 0.
//
// Usage: stage-7 [-host 0.0.0.0] [-ports 8001,8002,8003,8004] [ignored]
package main

// about is what -h prints under the usage line: what this stage does.
const about = "eXpServer stage 7: every port answers each chunk it receives reversed."
