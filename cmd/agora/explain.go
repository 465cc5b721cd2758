package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

func init() {
	register(command{name: "explain", summary: "Say why a framework or role got no offers recently", run: runExplain})
}

type explanation struct {
	Subject string `json:"subject"`
	Kind    string `json:"kind"`
	Cycles  int    `json:"cycles"`
	Offers  int    `json:"offers"`
	Reasons []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"reasons"`
}

func runExplain(args []string) int {
	var o clientOptions
	fs := newClientFlags("explain", "FRAMEWORK_ID_OR_ROLE [--json]",
		"Asks the allocator why a framework (by ID) or a role got no offers in its recent\n"+
			"allocation cycles: quota limit reached, declined (filtered), suppressed, nothing\n"+
			"above the minimum allocatable, agents under maintenance, fair share exceeded, ...\n"+
			"with the numbers behind each reason.",
		"agora explain analytics", &o, true)
	if code, done := o.parse(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "agora explain: name one framework ID or role (see `agora frameworks`)")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var raw json.RawMessage
	err := o.state().Get(ctx, o.master, "/explain?framework_id="+url.QueryEscape(fs.Arg(0)), &raw)
	if err != nil && strings.Contains(err.Error(), "404") {
		fmt.Fprintf(os.Stderr, "agora explain: %q is neither a framework ID nor a role known to the master\n", fs.Arg(0))
		return 1
	}
	if err != nil {
		return masterFailure("explain", o.master, err)
	}
	if o.json {
		fmt.Println(string(raw))
		return 0
	}
	var e explanation
	if err := json.Unmarshal(raw, &e); err != nil {
		fmt.Fprintln(os.Stderr, "agora explain:", err)
		return 1
	}
	fmt.Printf("%s %s: %d offers in the last %d allocation cycles\n", e.Kind, e.Subject, e.Offers, e.Cycles)
	w := newTable()
	fmt.Fprintln(w, "REASON\tDETAILS")
	for _, r := range e.Reasons {
		fmt.Fprintf(w, "%s\t%s\n", r.Code, r.Message)
	}
	w.Flush()
	return 0
}
