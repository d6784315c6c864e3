// Stage 17 of eXpServer: directory listings, the last stage of phase 2. It
// serves what its JSON config describes — files, redirects and a reverse
// proxy — and a folder without an index file gets an HTML listing of its
// files and subfolders.
//
// Usage: stage-17 CONFIG.json
package main

// about is what -h prints under the usage line: what this stage does.
const about = "eXpServer stage 17: serves what the JSON config describes (file_serve with directory\n" +
	"listings, redirect and reverse_proxy routes on the listeners it names)."
