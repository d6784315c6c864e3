// Stage 6 of eXpServer: one process listens on four TCP ports and answers
// every chunk a client sends with the same chunk reversed.
//
// The epoll loop still lives here in main, with the lists of listeners and
// connections as package variables, and it finds the owner of each event by
// searching those lists. Stage 7 moves the loop into its own module and
// replaces the search with a registration carried in the event itself.
//
// Usage: stage-6 [-host 0.0.0.0] [-ports 8001,8002,8003,8004] [ignored]
package main

// about is what -h prints under the usage line: what this stage does.
const about = "eXpServer stage 6: every port answers each chunk it receives reversed."
