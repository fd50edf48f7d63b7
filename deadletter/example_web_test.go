package deadletter_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/heddle-go/heddle"
	"github.com/heddle-go/heddle/bus"
	"github.com/heddle-go/heddle/deadletter"
	"github.com/heddle-go/heddle/membus"
)

// The web view mounted in a server of one's own, and its JSON API asked
// for the counts by reason kind.
func ExampleNewHandler() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := membus.New()
	defer b.Close()
	consumer, err := deadletter.New(b, deadletter.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	group, err := heddle.Start(ctx, consumer)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, reason := range []string{
		"rate_limited: tier 'frontier' has no available capacity",
		"rate_limited: tier 'frontier' has no available capacity",
		"no_worker: no worker serves 'summarizer' at tier 'standard'",
	} {
		env, _ := heddle.NewDeadLetter(reason, []byte(`{"worker_type": "summarizer", "payload": {}}`)).Encode()
		_ = b.Publish(ctx, &bus.Msg{Subject: heddle.SubjectDeadLetter, Data: env})
	}
	_ = b.Flush(ctx)
	group.Stop() // the consumer drains: the three envelopes are stored

	const token = "a-token-of-at-least-16-bytes"
	view, err := deadletter.NewHandler(consumer, deadletter.HandlerOptions{Token: token})
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle(deadletter.DefaultPrefix, view)
	mux.Handle(deadletter.DefaultPrefix+"/", view)
	// A program listening on an address of its choice checks it first.
	fmt.Println(deadletter.CheckListenAddr("0.0.0.0:8080", ""))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/dead-letters/api/counts", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var counts deadletter.Counts
	if err := json.NewDecoder(resp.Body).Decode(&counts); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.Status, counts.Total, counts.ByReasonKind)
	// Output:
	// deadletter: refusing to serve the dead-letter view on 0.0.0.0:8080 ("0.0.0.0") without a token: set HEDDLE_WORKSHOP_TOKEN, or listen on 127.0.0.1
	// 200 OK 3 map[no_worker:1 rate_limited:2]
}
