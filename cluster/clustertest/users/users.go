// Package users makes throw-away system users for tests that run tasks as
// different users (--switch_user), and directories those users may
// traverse. Both need root; the tests skip (or, with CI=true, fail)
// without it through package tier.
package users

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/agora-cluster/agora/cluster/clustertest/tier"
)

// Add adds a system user with a group of its own, named after this
// process and tag, and removes both when the test ends.
func Add(t testing.TB, tag string) string {
	t.Helper()
	tier.Need(t, tier.Root, tier.RootErr())
	name := fmt.Sprintf("agt%d%s", os.Getpid()%100000, tag)
	if out, err := exec.Command("useradd", "--system", "--no-create-home", "--user-group",
		"--shell", "/bin/sh", name).CombinedOutput(); err != nil {
		tier.Need(t, tier.Root, fmt.Errorf("useradd %s: %v: %s", name, err, out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v: %s", name, err, out)
		}
		_ = exec.Command("groupdel", name).Run() // gone with the user where USERGROUPS_ENAB is on
	})
	return name
}

// TraversableDir is a fresh directory outside /tmp whose parents other
// users may traverse, removed when the test ends. A test's temporary
// directory is private to root, and the native containerizer gives each
// container a /tmp of its own: either would hide a work directory's
// sandboxes from other users whatever their modes.
func TraversableDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("/var/tmp", "agora-users-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
