// Package xlog is the server's logger, the Go edition of the course's
// xps_logger: one line per call on standard output, with a coloured level
// label and the name of the function that logged.
//
// Levels are ERROR, INFO, DEBUG, WARNING and HTTP. DEBUG lines are printed
// only when the environment variable XPS_DEBUG is exactly "1"; every other
// level prints unless XPS_LOG names the levels to keep: XPS_LOG=error,warning
// drops the INFO and HTTP lines every connection and request writes, as an
// operator who turns nginx's access log off would. A line looks like
//
//	INFO  listener.accept : new connection
//
// with the label in bold on a coloured background and the function name in
// green. Colour is used when standard output is a terminal; XPS_COLOR=1
// forces it on and XPS_COLOR=0 (or NO_COLOR) turns it off, so a log
// redirected to a file stays readable.
//
// Each line is written at once, unless the program calls Buffer: then lines
// are held until Flush, which an event loop calls before it waits for
// events. The course asks for every line to be flushed immediately; flushing
// before every wait keeps that promise for anyone watching (a line never
// waits while the server is idle) at one write per batch of events.
//
// A program that runs an event loop on each of several threads names each
// thread (NameThread); every line logged on a named thread then carries its
// name, as in
//
//	INFO  [w2] listener.accept : new connection
//
// Control characters in a message, and bytes that are not UTF-8, are written
// as \xHH escapes (a line break as \x0a): messages quote what clients sent,
// and no client may add a line of its own to the log or drive the
// operator's terminal.
//
// Payload bytes are never logged at a default level: the course's tests push
// gigabytes through the server while its output goes to a file.
package xlog
