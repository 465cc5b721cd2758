package shuffle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"
)

// ErrFetchFailed means a segment could not be fetched after all retries;
// the JobTracker should hear about it (too many such reports re-run the
// map).
var ErrFetchFailed = errors.New("fetch failed")

// Location is where a map's output can be fetched.
type Location struct {
	Map     int    `json:"map"`
	Attempt string `json:"attempt"`
	URL     string `json:"url"` // base URL of the TaskTracker, e.g. http://host:port
}

// Fetched describes a downloaded segment.
type Fetched struct {
	Path    string
	Bytes   int64
	Records int64
}

// Fetcher downloads map output segments.
type Fetcher struct {
	Client  *http.Client  // nil: http.DefaultClient
	Retries int           // attempts after the first; 0 means 4
	Backoff time.Duration // first wait between attempts, doubling; 0 means 100ms
}

// Fetch downloads reduce's segment of loc into dst. A transfer that breaks
// off resumes with a Range request; the result must have the advertised
// length and CRC-32C. A 404 (the output is not there) fails at once.
func (f *Fetcher) Fetch(ctx context.Context, job string, loc Location, reduce int, dst string) (Fetched, error) {
	client := f.Client
	if client == nil {
		client = http.DefaultClient
	}
	retries := f.Retries
	if retries == 0 {
		retries = 4
	}
	backoff := f.Backoff
	if backoff == 0 {
		backoff = 100 * time.Millisecond
	}
	q := url.Values{"job": {job}, "map": {strconv.Itoa(loc.Map)}, "reduce": {strconv.Itoa(reduce)}}
	if loc.Attempt != "" {
		q.Set("attempt", loc.Attempt)
	}
	u := loc.URL + Path + "?" + q.Encode()
	out, err := os.Create(dst)
	if err != nil {
		return Fetched{}, err
	}
	defer out.Close()
	var lastErr error
	for try := 0; try <= retries; try++ {
		if try > 0 {
			select {
			case <-ctx.Done():
				return Fetched{}, ctx.Err()
			case <-time.After(backoff << (try - 1)):
			}
		}
		res, err := f.try(ctx, client, u, out)
		if err == nil {
			res.Path = dst
			return res, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			return Fetched{}, ctx.Err()
		}
		var perm permanent
		if errors.As(err, &perm) {
			break
		}
	}
	return Fetched{}, fmt.Errorf("%w: map %d (%s) from %s: %v", ErrFetchFailed, loc.Map, loc.Attempt, loc.URL, lastErr)
}

type permanent struct{ error }

// try continues the transfer into out from where it stopped.
func (f *Fetcher) try(ctx context.Context, client *http.Client, u string, out *os.File) (Fetched, error) {
	have, err := out.Seek(0, io.SeekEnd)
	if err != nil {
		return Fetched{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Fetched{}, permanent{err}
	}
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	resp, err := client.Do(req)
	if err != nil {
		return Fetched{}, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		if have > 0 { // the server sent it all again
			if err := out.Truncate(0); err != nil {
				return Fetched{}, err
			}
			if _, err := out.Seek(0, io.SeekStart); err != nil {
				return Fetched{}, err
			}
		}
	case http.StatusPartialContent:
	case http.StatusRequestedRangeNotSatisfiable:
		// We may already have it all; the checks below decide.
	case http.StatusNotFound, http.StatusGone, http.StatusBadRequest:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return Fetched{}, permanent{fmt.Errorf("%s: %s", resp.Status, trim(b))}
	default:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return Fetched{}, fmt.Errorf("%s: %s", resp.Status, trim(b))
	}
	length, err1 := strconv.ParseInt(resp.Header.Get(HeaderLength), 10, 64)
	records, err2 := strconv.ParseInt(resp.Header.Get(HeaderRecords), 10, 64)
	crc, err3 := strconv.ParseUint(resp.Header.Get(HeaderCRC), 10, 32)
	if err := errors.Join(err1, err2, err3); err != nil {
		return Fetched{}, permanent{fmt.Errorf("bad segment headers: %v", err)}
	}
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		if _, err := io.Copy(out, resp.Body); err != nil {
			return Fetched{}, err // resumable
		}
	}
	size, err := out.Seek(0, io.SeekEnd)
	if err != nil {
		return Fetched{}, err
	}
	if size != length {
		if size > length {
			out.Truncate(0)
		}
		return Fetched{}, fmt.Errorf("got %d of %d bytes", size, length)
	}
	got, err := crcOf(out.Name())
	if err != nil {
		return Fetched{}, err
	}
	if got != uint32(crc) {
		out.Truncate(0)
		return Fetched{}, fmt.Errorf("checksum mismatch: got %08x, want %08x", got, crc)
	}
	return Fetched{Bytes: length, Records: records}, nil
}

func trim(b []byte) string {
	s := string(b)
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == ' ') {
		s = s[:len(s)-1]
	}
	return s
}
