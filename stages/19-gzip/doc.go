// Stage 19 of eXpServer: gzip compression. It serves what its JSON config
// describes — files with listings, redirects and a reverse proxy, to the
// clients each route's access lists let in — and compresses text files and
// listings with gzip, in chunks, for clients that accept it, on the routes
// that ask for it.
//
// Usage: stage-19 CONFIG.json
package main

// about is what -h prints under the usage line: what this stage does.
const about = "eXpServer stage 19: serves what the JSON config describes (file_serve with directory\n" +
	"listings and gzip, redirect and reverse_proxy routes on the listeners it names), to the\n" +
	"clients each route's ip_whitelist and ip_blacklist let in."
