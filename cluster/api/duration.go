package api

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// FormatDuration writes d the way Mesos (stout) does: "5secs", "15mins",
// "2secs", "500ms". mesos-go's executor config parses only these units.
func FormatDuration(d time.Duration) string {
	type unit struct {
		d    time.Duration
		name string
	}
	for _, u := range []unit{
		{7 * 24 * time.Hour, "weeks"}, {24 * time.Hour, "days"}, {time.Hour, "hrs"},
		{time.Minute, "mins"}, {time.Second, "secs"}, {time.Millisecond, "ms"},
		{time.Microsecond, "us"},
	} {
		if d >= u.d {
			return strconv.FormatFloat(float64(d)/float64(u.d), 'f', -1, 64) + u.name
		}
	}
	return fmt.Sprintf("%dns", d.Nanoseconds())
}

func unmarshalJSONArray(text string, v any) error { return json.Unmarshal([]byte(text), v) }
