// Stage 16 of eXpServer: a server configured by a JSON file. The config
// names the listeners and, for each server block, routes matched by path
// prefix: file_serve serves a folder, redirect answers with a Location, and
// reverse_proxy forwards the parsed request to an upstream and relays its
// reply byte for byte.
//
// Usage: stage-16 CONFIG.json
package main

// about is what -h prints under the usage line: what this stage does.
const about = "eXpServer stage 16: serves what the JSON config describes (file_serve, redirect and\n" +
	"reverse_proxy routes on the listeners it names)."
