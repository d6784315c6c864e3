// Stage 20 of eXpServer: load balancing. It serves what its JSON config
// describes — files with listings, gzipped for clients that accept it,
// redirects and a reverse proxy, to the clients each route's access lists
// let in — and a reverse_proxy route spreads its requests over several
// upstreams (round robin, ip_hash or least_conn), leaves out for a while
// an upstream that fails, and sends a request whose connect fails on to
// the next upstream.
//
// Usage: stage-20 CONFIG.json
package main

// about is what -h prints under the usage line: what this stage does.
const about = "eXpServer stage 20: serves what the JSON config describes (file_serve with directory\n" +
	"listings and gzip, redirect, and reverse_proxy balanced over its upstreams, on the\n" +
	"listeners it names), to the clients each route's ip_whitelist and ip_blacklist let in."
