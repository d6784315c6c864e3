// Stage 12 of eXpServer: a file becomes a pipe source. The second port
// sends sample.txt from the public folder to every client as soon as it
// connects, then closes; the third port tries a file outside the public
// folder and is refused, closing without a byte. The first port still relays
// to the upstream and the fourth echoes.
//
// Usage: stage-12 [-host 0.0.0.0] [-ports 8001,8002,8003,8004]
//
//	[-upstream localhost:3000] [-public ../public] [ignored]
package main

// about is what -h prints under the usage line: what this stage does.
const about = "eXpServer stage 12: the first port relays to the upstream, the second sends sample.txt,\n" +
	"the third refuses a file outside the public folder, the fourth echoes."
