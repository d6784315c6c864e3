// Gohttp is the net/http peer that tools/bench measures beside nginx and
// stage 17: the standard library's file server on / and its reverse proxy
// on /proxy/, nothing tuned, as a Go programmer would write it in a few
// lines. The bench runs it with GOMAXPROCS=1 on one CPU, like the other two.
//
// Usage:
//
//	gohttp -addr 127.0.0.1:PORT -root DIR -upstream HOST:PORT
package main

import (
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "the `address` to listen on")
	root := flag.String("root", ".", "the `directory` to serve on /")
	upstream := flag.String("upstream", "", "the `host:port` that /proxy/ relays to, with the prefix stripped")
	flag.Parse()

	mux := http.NewServeMux()
	mux.Handle("/", http.FileServer(http.Dir(*root)))
	if *upstream != "" {
		proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: *upstream})
		// One upstream connection per request, as nginx's proxy_pass and
		// stage 17 do by default, so the row compares the same work.
		proxy.Transport = &http.Transport{DisableKeepAlives: true}
		mux.Handle("/proxy/", http.StripPrefix("/proxy", proxy))
	}
	log.Fatal(http.ListenAndServe(*addr, mux))
}
