// Stage 11 of eXpServer: the first port becomes a TCP reverse proxy. Each
// client accepted there gets its own connection to the upstream server, and
// two pipes relay the bytes, client to upstream and upstream to client,
// without looking at them. The other ports echo.
//
// Usage: stage-11 [-host 0.0.0.0] [-ports 8001,8002,8003,8004]
//
//	[-upstream localhost:3000] [ignored]
package main

// about is what -h prints under the usage line: what this stage does.
const about = "eXpServer stage 11: the first port relays to the upstream; the others echo."
