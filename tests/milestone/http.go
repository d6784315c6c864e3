package milestone

import (
	"bytes"

	"expserver-go/common/xpstest"
)

// httpMilestones are the checks of the HTTP stages (14–17).
var httpMilestones = []Milestone{
	{ID: "get-sample-txt", Title: "GET /sample.txt answers 200 with the file",
		From: 14, To: 17, Run: checkGetSampleTxt},
}

func checkGetSampleTxt(e *Env) error {
	want, err := sampleTxt(e)
	if err != nil {
		return err
	}
	r, err := xpstest.Get(e.Addr(0), "/sample.txt", replyTimeout)
	if err != nil {
		return fail("a response", "%v", err)
	}
	if r.Status != 200 || r.Get("Content-Type") != "text/plain" || !bytes.Equal(r.Body, want) {
		return fail("200 text/plain with sample.txt", "%d %q, %d body bytes", r.Status, r.Get("Content-Type"), len(r.Body))
	}
	return nil
}
