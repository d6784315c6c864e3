// Stage 23 of eXpServer: multiple workers. It serves what its JSON config
// describes — files with listings, gzipped for clients that accept it,
// redirects and a reverse proxy balanced over its upstreams, to the
// clients each route's access lists let in, under the config's timeouts,
// with its metrics on a listener of their own — with as many event loops
// as the config's workers key asks for, each on a thread of its own,
// sharing the listening sockets: the server uses every CPU, and one slow
// or failing loop does not stop the others.
//
// Usage: stage-23 CONFIG.json
package main

// about is what -h prints under the usage line: what this stage does.
const about = "eXpServer stage 23: serves what the JSON config describes (file_serve with directory\n" +
	"listings and gzip, redirect, and reverse_proxy balanced over its upstreams, on the\n" +
	"listeners it names, to the clients each route's access lists let in, under its\n" +
	"timeouts, with its metrics on a listener of their own) with as many event loops as\n" +
	"its \"workers\" key asks for (1 by default, \"auto\" for one per CPU).\n\n" +
	"Fault hooks for tests, inert unless set: XPS_FAULT_PANIC_PATH=/p makes the worker\n" +
	"serving a request for /p panic; XPS_FAULT_STALL_PATH=/s makes it sleep\n" +
	"XPS_FAULT_STALL_MS (default 3000) milliseconds in its loop, then answer 200."
