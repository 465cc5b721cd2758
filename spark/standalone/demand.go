package standalone

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
)

// MasterState is what the standalone Master's web UI serves at /json/
// (the fields read here).
type MasterState struct {
	URL          string        `json:"url"`
	Workers      []WorkerState `json:"workers"`
	AliveWorkers int           `json:"aliveworkers"`
	Cores        int           `json:"cores"`
	CoresUsed    int           `json:"coresused"`
	ActiveApps   []AppState    `json:"activeapps"`
	Status       string        `json:"status"`
}

// WorkerState is one worker as the Master sees it.
type WorkerState struct {
	ID         string `json:"id"`
	Host       string `json:"host"`
	Port       int    `json:"port"`
	Cores      int    `json:"cores"`
	CoresUsed  int    `json:"coresused"`
	Memory     int    `json:"memory"`
	MemoryUsed int    `json:"memoryused"`
	State      string `json:"state"`
}

// AppState is one application as the Master sees it. Cores is the cores
// granted (the JSON does not say how many the application asked for:
// CoresLeft comes from the application's page).
type AppState struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	Cores           int    `json:"cores"`
	MemoryPerExec   int    `json:"memoryperexecutor"`
	State           string `json:"state"`
	CoresLeft       int    `json:"coresLeft"`
	CoresUnlimited  bool   `json:"coresUnlimited,omitempty"`
	CoresLeftKnown  bool   `json:"-"`
	WaitingForCores bool   `json:"waitingForCores"`
}

// unlimitedCores stands for an application without spark.cores.max, which
// takes every core the workers have.
const unlimitedCores = math.MaxInt32

// appCoresRe matches the application page's "Cores:" item: "4 (2
// granted, 2 left)", or "Unlimited (2 granted)" without spark.cores.max.
var (
	appCoresRe     = regexp.MustCompile(`Cores:</strong>\s*(\d+) \((\d+) granted, (\d+) left\)`)
	appUnlimitedRe = regexp.MustCompile(`Cores:</strong>\s*Unlimited \((\d+) granted\)`)
)

// parseAppCores reads the cores an application still waits for from its
// page on the Master's web UI.
func parseAppCores(page string) (left int, unlimited, ok bool) {
	if m := appCoresRe.FindStringSubmatch(page); m != nil {
		left, _ = strconv.Atoi(m[3])
		return left, false, true
	}
	if appUnlimitedRe.MatchString(page) {
		return unlimitedCores, true, true
	}
	return 0, false, false
}

// fetchState reads the Master's /json/ and, for each active application,
// how many cores it still waits for.
func fetchState(ctx context.Context, c *http.Client, uiURL string) (*MasterState, error) {
	body, err := get(ctx, c, uiURL+"/json/")
	if err != nil {
		return nil, err
	}
	var st MasterState
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("the standalone Master's /json/: %w", err)
	}
	for i := range st.ActiveApps {
		a := &st.ActiveApps[i]
		page, err := get(ctx, c, uiURL+"/app/?appId="+url.QueryEscape(a.ID))
		if err != nil {
			continue
		}
		a.CoresLeft, a.CoresUnlimited, a.CoresLeftKnown = parseAppCores(string(page))
	}
	return &st, nil
}

func get(ctx context.Context, c *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return b, nil
}

// unmetCores is how many more cores the active applications wait for
// than the workers can give them: each application's cores left, less
// the free cores of alive workers with memory for one of its executors
// (each free core given to one application only), less pending cores,
// those of workers launched and not yet registered. An application whose
// page could not be read counts as waiting for one core while it has
// none.
func unmetCores(st *MasterState, pending int) int {
	type free struct{ cores, mem int }
	var workers []free
	for _, w := range st.Workers {
		if w.State == "ALIVE" {
			workers = append(workers, free{w.Cores - w.CoresUsed, w.Memory - w.MemoryUsed})
		}
	}
	unmet := 0
	for i := range st.ActiveApps {
		a := &st.ActiveApps[i]
		left := a.CoresLeft
		if !a.CoresLeftKnown {
			left = 0
			if a.Cores == 0 {
				left = 1
			}
		}
		a.WaitingForCores = false
		for j := range workers {
			if left == 0 {
				break
			}
			w := &workers[j]
			if w.cores <= 0 || w.mem < a.MemoryPerExec {
				continue
			}
			n := min(left, w.cores)
			w.cores -= n
			left -= n
		}
		if left > 0 {
			a.WaitingForCores = true
			if left >= unlimitedCores-unmet {
				return unlimitedCores
			}
			unmet += left
		}
	}
	return max(0, unmet-pending)
}
