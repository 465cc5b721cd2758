package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/gogo/protobuf/proto"
)

// HTTPError is an answer other than success, with the Mesos status code.
type HTTPError struct {
	Code    int
	Message string
}

func (e *HTTPError) Error() string { return e.Message }

// ReadCall checks a v1 API call's method, Content-Type and size and
// decodes its body into msg, answering as Mesos does: 405 for a method
// other than POST (with Allow set), 400 without a Content-Type, 415 for one
// that is neither codec, 413 past max bytes, 400 for a body that does not
// parse.
func ReadCall(w http.ResponseWriter, r *http.Request, msg proto.Message, max int64) (Codec, *HTTPError) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return Codec{}, &HTTPError{http.StatusMethodNotAllowed, fmt.Sprintf("expecting a 'POST' request, received '%s'", r.Method)}
	}
	codec, err := RequestCodec(r.Header.Get("Content-Type"))
	if err != nil {
		code := http.StatusUnsupportedMediaType
		if errors.Is(err, ErrNoContentType) {
			code = http.StatusBadRequest
		}
		return Codec{}, &HTTPError{code, err.Error()}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return Codec{}, &HTTPError{http.StatusBadRequest, fmt.Sprintf("failed to read the request body: %v", err)}
	}
	if int64(len(body)) > max {
		return Codec{}, &HTTPError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds %d bytes", max)}
	}
	if err := codec.Unmarshal(body, msg); err != nil {
		return Codec{}, &HTTPError{http.StatusBadRequest, fmt.Sprintf("failed to parse body into %T: %v", msg, err)}
	}
	return codec, nil
}
