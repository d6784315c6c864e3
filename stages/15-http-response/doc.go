// Stage 15 of eXpServer: the same HTTP file server as stage 14, with every
// response built by the response module: a status line, ordered headers —
// Date, Server and Access-Control-Allow-Origin on every one — and a body,
// serialized in one piece.
//
// Usage: stage-15 [-host 0.0.0.0] [-ports 8001,8002,8003,8004]
//
//	[-public ../public] [ignored]
package main

// about is what -h prints under the usage line: what this stage does.
const about = "eXpServer stage 15: every port serves the public folder over HTTP."
