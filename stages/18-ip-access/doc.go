// Stage 18 of eXpServer: access control by client address. It serves what
// its JSON config describes — files with listings, redirects and a reverse
// proxy — and a route's ip_whitelist and ip_blacklist decide, from the TCP
// peer's address alone, which clients it answers and which get 403.
//
// Usage: stage-18 CONFIG.json
package main

// about is what -h prints under the usage line: what this stage does.
const about = "eXpServer stage 18: serves what the JSON config describes (file_serve with directory\n" +
	"listings, redirect and reverse_proxy routes on the listeners it names), to the clients\n" +
	"each route's ip_whitelist and ip_blacklist let in."
