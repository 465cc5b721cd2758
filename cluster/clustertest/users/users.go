// Package users makes throw-away system users for tests that run tasks as
// different users (--switch_user), and directories those users may
// traverse. Both need root; the tests skip (or, with CI=true, fail)
// without it through package tier.
package users

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"testing"

	"github.com/agora-cluster/agora/cluster/clustertest/tier"
)

// Option changes how Add makes a user.
type Option func(*options)

type options struct{ group string }

// InGroupOf makes the user's primary group other's primary group instead
// of a group of its own, as users that share a group such as "users" are.
func InGroupOf(other string) Option {
	return func(o *options) { o.group = other }
}

// Add adds a system user with a group of its own (or, with InGroupOf,
// another user's group), named after this process and tag, and removes
// both when the test ends.
func Add(t testing.TB, tag string, opts ...Option) string {
	t.Helper()
	tier.Need(t, tier.Root, tier.RootErr())
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	name := fmt.Sprintf("agt%d%s", os.Getpid()%100000, tag)
	args := []string{"--system", "--no-create-home", "--shell", "/bin/sh"}
	if o.group != "" {
		u, err := user.Lookup(o.group)
		if err != nil {
			t.Fatalf("users: the group of %s: %v", o.group, err)
		}
		args = append(args, "--gid", u.Gid)
	} else {
		args = append(args, "--user-group")
	}
	if out, err := exec.Command("useradd", append(args, name)...).CombinedOutput(); err != nil {
		tier.Need(t, tier.Root, fmt.Errorf("useradd %s: %v: %s", name, err, out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v: %s", name, err, out)
		}
		if o.group == "" {
			_ = exec.Command("groupdel", name).Run() // gone with the user where USERGROUPS_ENAB is on
		}
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
