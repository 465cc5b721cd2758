package dispatcher

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/agora-cluster/agora/spark/client"
)

// The REST submission protocol that spark-submit speaks in cluster mode
// (Spark's deploy/rest package): JSON messages whose "action" is the
// message's class name, under /v1/submissions. The field names are Spark's.

// The protocol's messages and constants are the client's (the wire
// types); these names keep the dispatcher's code short.
type (
	CreateSubmissionRequest = client.CreateSubmissionRequest
	Response                = client.Response
)

const (
	ProtocolVersion              = client.ProtocolVersion
	SparkVersion                 = client.SparkVersion
	StatusUnknownProtocolVersion = client.StatusUnknownProtocolVersion
	ActionCreateResponse         = client.ActionCreateResponse
	ActionStatusResponse         = client.ActionStatusResponse
	ActionKillResponse           = client.ActionKillResponse
	ActionError                  = client.ActionError
)

// createRequestFields are the fields of CreateSubmissionRequest; others
// are echoed back as unknownFields.
var createRequestFields = map[string]bool{"action": true, "message": true, "clientSparkVersion": true,
	"appResource": true, "mainClass": true, "appArgs": true, "sparkProperties": true, "environmentVariables": true}

// errorResponse is an ErrorResponse with msg.
func errorResponse(msg string) Response {
	return Response{Action: ActionError, ServerSparkVersion: SparkVersion, Message: msg}
}

// ProtocolError is a request the protocol refuses: Spark names its class
// in the message (SubmitRestProtocolException and its subclasses).
type ProtocolError struct {
	Class string // SubmitRestProtocolException or SubmitRestMissingFieldException
	Msg   string
}

func (e *ProtocolError) Error() string {
	return "org.apache.spark.deploy.rest." + e.Class + ": " + e.Msg
}

func missing(field, message string) error {
	return &ProtocolError{Class: "SubmitRestMissingFieldException", Msg: fmt.Sprintf("'%s' is missing in message %s.", field, message)}
}

func malformed(format string, a ...any) error {
	return &ProtocolError{Class: "SubmitRestProtocolException", Msg: fmt.Sprintf(format, a...)}
}

// ParseCreate reads and checks a create request as Spark's server does:
// the message's action, then the fields and typed properties its
// validation asks for, then what the Mesos dispatcher needs besides (a main
// class, the arguments and the environment, which may be empty). The
// second result lists the fields it does not know.
func ParseCreate(body []byte) (*CreateSubmissionRequest, []string, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, nil, malformed("Malformed JSON: %v", err)
	}
	var action string
	if a, ok := raw["action"]; !ok || json.Unmarshal(a, &action) != nil || action == "" {
		return nil, nil, &ProtocolError{Class: "SubmitRestMissingFieldException", Msg: "Action field not found in JSON:\n" + string(body)}
	}
	if action != "CreateSubmissionRequest" {
		return nil, nil, &unexpectedType{action}
	}
	var req CreateSubmissionRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return nil, nil, malformed("Malformed JSON: %v", err)
	}
	var unknown []string
	for k := range raw {
		if !createRequestFields[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	if err := validate(&req, raw); err != nil {
		return nil, unknown, err
	}
	return &req, unknown, nil
}

// unexpectedType is a well-formed message that is not a create request.
type unexpectedType struct{ action string }

func (e *unexpectedType) Error() string {
	return fmt.Sprintf("Received message of unexpected type %s.", e.action)
}

func validate(r *CreateSubmissionRequest, raw map[string]json.RawMessage) error {
	const m = "CreateSubmissionRequest"
	switch {
	case r.ClientSparkVersion == "":
		return missing("clientSparkVersion", m)
	case r.AppResource == "":
		return missing("appResource", m)
	case r.SparkProperties == nil:
		return missing("sparkProperties", m)
	case r.SparkProperties["spark.app.name"] == "":
		return missing("spark.app.name", m)
	}
	for _, c := range []struct {
		key, kind string
		ok        func(string) bool
	}{
		{"spark.driver.supervise", "boolean", isBool},
		{"spark.driver.cores", "numeric", isNumber},
		{"spark.cores.max", "numeric", isNumber},
		{"spark.driver.memory", "memory", isMemory},
		{"spark.executor.memory", "memory", isMemory},
		{"spark.driver.memoryOverhead", "memory", isMemory},
		{"spark.mesos.driver.memoryOverhead", "memory", isMemory},
	} {
		if v, ok := r.SparkProperties[c.key]; ok && !c.ok(v) {
			return malformed("Property '%s' expected %s value: actual was '%s'.", c.key, c.kind, v)
		}
	}
	// What the Mesos dispatcher's servlet requires besides.
	switch {
	case r.MainClass == "" && !IsPython(r.AppResource):
		// spark-submit sends a Python application with an empty main
		// class.
		return malformed("Main class is missing.")
	case raw["appArgs"] == nil || string(raw["appArgs"]) == "null":
		return malformed("Application arguments are missing.")
	case raw["environmentVariables"] == nil || string(raw["environmentVariables"]) == "null":
		return malformed("Environment variables are missing.")
	}
	if _, _, err := appResource(r.AppResource); err != nil {
		return malformed("%v.", err)
	}
	if c := r.SparkProperties["spark.driver.cores"]; c != "" {
		if f, _ := strconv.ParseFloat(c, 64); f <= 0 {
			return malformed("Property 'spark.driver.cores' must be positive: actual was '%s'.", c)
		}
	}
	return nil
}

func isBool(s string) bool {
	_, err := strconv.ParseBool(strings.ToLower(s))
	return err == nil
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

var memoryString = regexp.MustCompile(`^(?i)([0-9]+)(b|k|kb|m|mb|g|gb|t|tb|p|pb)?$`)

func isMemory(s string) bool { return memoryString.MatchString(strings.TrimSpace(s)) }

// MemoryMB converts a Spark memory string (JVM style: 512m, 2g; a bare
// number is MiB, as for spark.driver.memory) to MiB.
func MemoryMB(s string) (float64, error) {
	m := memoryString.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("%q is not a memory size (e.g. 512m, 2g)", s)
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, err
	}
	switch strings.ToLower(strings.TrimSuffix(strings.ToLower(m[2]), "b")) {
	case "":
		if strings.EqualFold(m[2], "b") {
			return n / (1 << 20), nil
		}
		return n, nil
	case "k":
		return n / 1024, nil
	case "m":
		return n, nil
	case "g":
		return n * 1024, nil
	case "t":
		return n * 1024 * 1024, nil
	case "p":
		return n * 1024 * 1024 * 1024, nil
	}
	return 0, fmt.Errorf("%q is not a memory size", s)
}
