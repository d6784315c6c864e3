// Stage 14 of eXpServer: the server speaks HTTP. Every port is a static
// file server for the public folder: the session reads the request head
// through a resumable parser, answers with a status line and headers, and
// streams the file behind them. Malformed or hostile requests get the 4xx
// or 5xx they deserve, and the connection closes after each response.
//
// Usage: stage-14 [-host 0.0.0.0] [-ports 8001,8002,8003,8004]
//
//	[-public ../public] [ignored]
package main

// about is what -h prints under the usage line: what this stage does.
const about = "eXpServer stage 14: every port serves the public folder over HTTP."
