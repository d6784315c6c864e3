// Package buffer holds the byte buffer and the FIFO buffer list that the
// course hands over as xps_buffer and xps_buffer_list.
//
// A Buffer is a byte slice with a read position. A List is a queue of
// buffers with a running total: producers append at the tail, consumers look
// at the head and then clear what they used. The list is what a stage 8
// connection queues its replies in and, from stage 10, what every pipe holds.
//
// Two additions serve speed without changing the course's model: Slices
// exposes the queued bytes without copying them, so a sender can hand them
// all to one writev-style call, and MoveTo transfers queued buffers from one
// list to another without touching their bytes.
package buffer
