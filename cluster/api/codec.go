// Package api holds agora's wire-level helpers for the Mesos v1 HTTP API:
// codecs and content negotiation, RecordIO framing, the resource and
// attribute text syntax of Mesos flags, and the internal master↔agent
// protocol. Wire types themselves come from mesos-go.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strings"

	"github.com/gogo/protobuf/proto"
)

// Media types spoken on the v1 API. Responses always carry exactly these strings.
const (
	MediaJSON     = "application/json"
	MediaProtobuf = "application/x-protobuf"
	MediaRecordIO = "application/recordio"
)

// Message is what both codecs can encode: every mesos-go wire type.
type Message interface {
	proto.Message
	json.Marshaler
}

// Codec encodes and decodes one media type.
type Codec struct {
	MediaType string
}

var (
	JSON     = Codec{MediaType: MediaJSON}
	Protobuf = Codec{MediaType: MediaProtobuf}
)

// Marshal encodes m in the codec's format.
func (c Codec) Marshal(m Message) ([]byte, error) {
	if c.MediaType == MediaProtobuf {
		return proto.Marshal(m)
	}
	return json.Marshal(m)
}

// Unmarshal decodes b into m.
func (c Codec) Unmarshal(b []byte, m proto.Message) error {
	if c.MediaType == MediaProtobuf {
		return proto.Unmarshal(b, m)
	}
	return json.Unmarshal(b, m)
}

// ErrNoContentType is returned when a request carries no Content-Type (Mesos: 400).
var ErrNoContentType = errors.New("expecting 'Content-Type' to be present")

// ErrUnsupportedMediaType is returned for a Content-Type other than json/protobuf (Mesos: 415).
type ErrUnsupportedMediaType struct{ Got string }

func (e ErrUnsupportedMediaType) Error() string {
	return fmt.Sprintf("expecting 'Content-Type' of %s or %s, got %q", MediaJSON, MediaProtobuf, e.Got)
}

// RequestCodec picks the codec of a request body from its Content-Type header.
// Parameters such as charset are tolerated.
func RequestCodec(contentType string) (Codec, error) {
	if strings.TrimSpace(contentType) == "" {
		return Codec{}, ErrNoContentType
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return Codec{}, ErrUnsupportedMediaType{Got: contentType}
	}
	switch mt {
	case MediaJSON:
		return JSON, nil
	case MediaProtobuf:
		return Protobuf, nil
	}
	return Codec{}, ErrUnsupportedMediaType{Got: contentType}
}

// ErrNotAcceptable is returned when Accept allows neither codec (Mesos: 406).
type ErrNotAcceptable struct{ Accept string }

func (e ErrNotAcceptable) Error() string {
	return fmt.Sprintf("'Accept' header %q allows neither %s nor %s", e.Accept, MediaJSON, MediaProtobuf)
}

// ResponseCodec picks the response codec from an Accept header. As in Mesos,
// JSON is tried first, so a missing Accept or */* gives JSON.
func ResponseCodec(accept string) (Codec, error) {
	if strings.TrimSpace(accept) == "" {
		return JSON, nil
	}
	json, pb := false, false
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if q, ok := params["q"]; ok && (q == "0" || q == "0.0" || q == "0.00" || q == "0.000") {
			continue
		}
		switch mt {
		case MediaJSON, "application/*", "*/*":
			json = true
		case MediaProtobuf:
			pb = true
		}
	}
	switch {
	case json:
		return JSON, nil
	case pb:
		return Protobuf, nil
	}
	return Codec{}, ErrNotAcceptable{Accept: accept}
}
