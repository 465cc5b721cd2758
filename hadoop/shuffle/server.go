// Package shuffle moves map output to reduces over HTTP, as Hadoop's
// TaskTracker serves /mapOutput: a Server hands out one partition's segment
// of a registered map output file (GET /mapOutput?job=&map=&reduce=, with
// optional &attempt=), honouring Range requests so an interrupted transfer
// resumes; a Fetcher downloads a segment to a local file, retrying with
// backoff and checking its length and CRC-32C.
package shuffle

import (
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/agora-cluster/agora/hadoop/mapoutput"
)

// Path is where a Server is usually mounted.
const Path = "/mapOutput"

// Response headers describing the segment.
const (
	HeaderRecords = "X-Map-Output-Records"
	HeaderCRC     = "X-Map-Output-Crc32c"
	HeaderAttempt = "X-Map-Output-Attempt"
	HeaderLength  = "X-Map-Output-Length"
)

type output struct {
	attempt string
	file    string
	index   mapoutput.Index
}

// Server serves the map outputs registered with it. It is safe for
// concurrent use.
type Server struct {
	mu   sync.RWMutex
	jobs map[string]map[int]output
}

// NewServer returns a server with nothing registered.
func NewServer() *Server { return &Server{jobs: map[string]map[int]output{}} }

// Register makes the map output file of a successful map attempt (and its
// index, file+".index") available. A later attempt of the same map
// replaces an earlier one.
func (s *Server) Register(job string, mapIndex int, attempt, file string) error {
	idx, err := mapoutput.ReadIndex(file + ".index")
	if err != nil {
		return fmt.Errorf("register output of %s: %w", attempt, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jobs[job] == nil {
		s.jobs[job] = map[int]output{}
	}
	s.jobs[job][mapIndex] = output{attempt: attempt, file: file, index: idx}
	return nil
}

// RemoveJob forgets a job's outputs and returns their files, which the
// caller may delete.
func (s *Server) RemoveJob(job string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var files []string
	for _, o := range s.jobs[job] {
		files = append(files, o.file, o.file+".index")
	}
	delete(s.jobs, job)
	return files
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	job := q.Get("job")
	m, err1 := strconv.Atoi(q.Get("map"))
	red, err2 := strconv.Atoi(q.Get("reduce"))
	if job == "" || err1 != nil || err2 != nil || m < 0 || red < 0 {
		http.Error(w, "want job=<id>&map=<n>&reduce=<n>", http.StatusBadRequest)
		return
	}
	s.mu.RLock()
	o, ok := s.jobs[job][m]
	s.mu.RUnlock()
	if !ok {
		http.Error(w, fmt.Sprintf("no output of map %d of %s here", m, job), http.StatusNotFound)
		return
	}
	if a := q.Get("attempt"); a != "" && a != o.attempt {
		http.Error(w, fmt.Sprintf("output of %s is not here (have %s)", a, o.attempt), http.StatusNotFound)
		return
	}
	if red >= len(o.index) {
		http.Error(w, fmt.Sprintf("reduce %d out of range: map output has %d partitions", red, len(o.index)), http.StatusBadRequest)
		return
	}
	f, err := os.Open(o.file)
	if err != nil {
		http.Error(w, fmt.Sprintf("map output of %s: %v", o.attempt, err), http.StatusGone)
		return
	}
	defer f.Close()
	e := o.index[red]
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set(HeaderRecords, strconv.FormatInt(e.Records, 10))
	h.Set(HeaderCRC, strconv.FormatUint(uint64(e.CRC), 10))
	h.Set(HeaderAttempt, o.attempt)
	h.Set(HeaderLength, strconv.FormatInt(e.Length, 10))
	// The section reader confines every read, ranged or not, to the
	// segment.
	http.ServeContent(w, r, "", time.Time{}, io.NewSectionReader(f, e.Offset, e.Length))
}

// crcOf computes the CRC-32C of a file.
func crcOf(path string) (uint32, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	h := crc32.New(mapoutput.Castagnoli)
	if _, err := io.Copy(h, f); err != nil {
		return 0, err
	}
	return h.Sum32(), nil
}
