module expserver-go

go 1.26.0

require (
	github.com/google/go-cmp v0.7.0
	github.com/klauspost/compress v1.20.4
	golang.org/x/sys v0.49.0
	gotest.tools/v3 v3.5.2
)
