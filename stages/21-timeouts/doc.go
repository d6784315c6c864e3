// Stage 21 of eXpServer: request timeouts. It serves what its JSON config
// describes — files with listings, gzipped for clients that accept it,
// redirects and a reverse proxy balanced over its upstreams, to the clients
// each route's access lists let in — and no longer waits for ever: a
// client that does not finish its request head, its body or reading its
// response, and an upstream that does not accept the connection, take the
// request or answer, are given up on after the config's timeouts, with 408
// or 504 when an answer is still possible.
//
// Usage: stage-21 CONFIG.json
package main

// about is what -h prints under the usage line: what this stage does.
const about = "eXpServer stage 21: serves what the JSON config describes (file_serve with directory\n" +
	"listings and gzip, redirect, and reverse_proxy balanced over its upstreams, on the\n" +
	"listeners it names), to the clients each route's ip_whitelist and ip_blacklist let in,\n" +
	"under the timeouts it sets (client_header_timeout, client_body_timeout, send_timeout,\n" +
	"proxy_connect_timeout, proxy_send_timeout, proxy_read_timeout; 60 s each by default)."
