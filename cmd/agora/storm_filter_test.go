package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agora-cluster/agora/cluster/clustertest"
	wordcount "github.com/agora-cluster/agora/examples/storm-wordcount"
)

// submit --filter and --env-filter substitute the file's variables before
// it is checked: without them the script ${ENV-AGORA_TEST_SPLIT} and the
// grouping ${grouping} are refused and nothing is sent; with them the topology is checked and only then is
// Nimbus (not there) tried.
func TestStormSubmitFilters(t *testing.T) {
	dir := t.TempDir()
	path, err := wordcount.WriteTo(filepath.Join(dir, "example"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(mustRead(t, path), "type: SHUFFLE", "type: ${grouping}", 1)
	text = strings.Replace(text, `["python3", "split.py"]`, `["python3", "${ENV-AGORA_TEST_SPLIT}"]`, 1)
	os.WriteFile(path, []byte(text), 0o644)
	props := filepath.Join(dir, "dev.properties")
	os.WriteFile(props, []byte("# the grouping of sentences\ngrouping = SHUFFLE\n"), 0o644)
	t.Setenv("AGORA_TEST_SPLIT", "split.py")
	refused := clustertest.RefusedAddr(t)
	submit := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := stormSubmit(append([]string{path, "--nimbus", refused}, args...), &out, &errb)
		return code, errb.String()
	}
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{nil, `script "${ENV-AGORA_TEST_SPLIT}" not found`},
		{[]string{"--filter", props}, "${ENV-AGORA_TEST_SPLIT}"},
		{[]string{"--env-filter"}, `unknown grouping "${grouping}"`},
		{[]string{"--filter", props, "--env-filter"}, "nimbus at " + refused + " is not reachable"},
		{[]string{"--filter", filepath.Join(dir, "none.properties"), "--env-filter"}, "none.properties"},
	} {
		if code, errOut := submit(tc.args...); code != 1 || !strings.Contains(errOut, tc.err) {
			t.Errorf("submit %q: exit %d, %q; want 1 and %q", tc.args, code, errOut, tc.err)
		}
	}
}
