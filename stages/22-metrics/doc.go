// Stage 22 of eXpServer: metrics. It serves what its JSON config describes
// — files with listings, gzipped for clients that accept it, redirects and
// a reverse proxy balanced over its upstreams, to the clients each route's
// access lists let in, under the config's timeouts — and counts what it
// does as it does it: connections and how they end, requests by type,
// responses by class, response times and bytes, with the CPU and memory it
// uses. A listener of its own (8004 unless the config says otherwise)
// answers /api with the figures as JSON for a dashboard, /metrics as
// Prometheus text, and /dashboard with a page that charts them live.
//
// Usage: stage-22 CONFIG.json
package main

// about is what -h prints under the usage line: what this stage does.
const about = "eXpServer stage 22: serves what the JSON config describes (file_serve with directory\n" +
	"listings and gzip, redirect, and reverse_proxy balanced over its upstreams, on the\n" +
	"listeners it names, to the clients each route's access lists let in, under its\n" +
	"timeouts), and its metrics on a listener of their own (the \"metrics\" key; 8004 by\n" +
	"default): /api (JSON), /metrics (Prometheus) and /dashboard."
