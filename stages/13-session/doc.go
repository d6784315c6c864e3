// Stage 13 of eXpServer: a session per client. The listener now only
// accepts; the session it creates decides what the client is connected to —
// the upstream on the first port, sample.txt on the second, nothing on the
// third and fourth — and relays every byte between the two through its own
// pipe ends.
//
// Usage: stage-13 [-host 0.0.0.0] [-ports 8001,8002,8003,8004]
//
//	[-upstream localhost:3000] [-public ../public] [ignored]
package main

// about is what -h prints under the usage line: what this stage does.
const about = "eXpServer stage 13: the first port relays to the upstream, the second sends sample.txt,\n" +
	"the third and fourth accept and do nothing."
