// Stage 10 of eXpServer: every port echoes what it receives, and bytes now
// travel through pipes. A connection's source feeds a pipe and its sink
// drains one; the loop's pipe pass moves the bytes and stops asking a source
// for more while its pipe holds a million bytes. That backpressure bounds the
// server's memory however fast a client sends and however slowly it reads.
//
// Usage: stage-10 [-host 0.0.0.0] [-ports 8001,8002,8003,8004] [ignored]
package main

// about is what -h prints under the usage line: what this stage does.
const about = "eXpServer stage 10: every port echoes what it receives."
