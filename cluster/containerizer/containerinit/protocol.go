package containerinit

import (
	"errors"
	"strconv"
)

// Config is what the init needs to start the task.
type Config struct {
	Path string
	Args []string
	Env  []string
	// UID, if set, is the identity the task runs as, with GID and Groups.
	UID    *uint32
	GID    uint32
	Groups []uint32
	// Sandbox is the task's working directory (the init starts in it).
	Sandbox string
	// SandboxInTmp says the sandbox lies below /tmp, so it must be mounted
	// back at its path once /tmp is replaced.
	SandboxInTmp bool
	// Tmp is the directory bind-mounted on /tmp; "" mounts a tmpfs.
	Tmp string
	// Keep are directories below /tmp besides the sandbox (the task's
	// persistent volumes) mounted back at their paths once /tmp is
	// replaced, so that the sandbox's links to them still lead there.
	Keep []string
	// ReadOnly are directories (the task's read-only persistent volumes)
	// the task may only read: mounted read-only in its mount namespace,
	// those in Keep where they are mounted back, the others over
	// themselves.
	ReadOnly []string
	// AgentMountNS is the agent's mount namespace (/proc/self/ns/mnt):
	// the init refuses to touch mounts in it.
	AgentMountNS string
	// ExitFile, if set, receives the task's wait status (decimal) when it
	// ends, so an agent that restarted meanwhile can still learn it.
	ExitFile string
	// Cgroup lists the cgroup v1 tasks files of the container's cgroup.
	// An init that runs a single thread (the C one, cinit/) joins them
	// itself by writing 0, which moves the writer's thread without the
	// kernel's global lock that moving a process takes, and says so in its
	// ready message, then starts the task without waiting for Go. This Go
	// init runs the runtime's threads besides the
	// one that would join (a retired thread would take the init's
	// membership with it), so it ignores them and the agent moves it.
	Cgroup []string
}

// Encode writes c as NUL-terminated fields, each a one-letter tag and a
// value (no encoding/json here: see the package comment).
func (c Config) Encode() []byte {
	return c.appendFields(make([]byte, 0, c.fieldsSize()))
}

// EncodeFramed is Frame(c.Encode()) in one allocation of its exact size
// (the environment alone is kilobytes, and every launch sends one).
func (c Config) EncodeFramed() []byte {
	n := c.fieldsSize()
	b := strconv.AppendInt(make([]byte, 0, frameDigits+1+n), int64(n), 10)
	pad := frameDigits - len(b)
	b = b[:frameDigits]
	copy(b[pad:], b[:frameDigits-pad])
	for i := range pad {
		b[i] = '0'
	}
	return c.appendFields(append(b, '\n'))
}

// fieldsSize is the length of c's encoded fields.
func (c Config) fieldsSize() int {
	n := 0
	c.eachField(func(_ byte, v string) { n += len(v) + 2 })
	return n
}

// appendFields appends c's encoded fields to b.
func (c Config) appendFields(b []byte) []byte {
	c.eachField(func(tag byte, v string) {
		b = append(b, tag)
		b = append(b, v...)
		b = append(b, 0)
	})
	return b
}

// eachField calls field with each of c's fields, in their encoded order.
func (c Config) eachField(field func(tag byte, v string)) {
	field('p', c.Path)
	for _, a := range c.Args {
		field('a', a)
	}
	for _, e := range c.Env {
		field('e', e)
	}
	if c.UID != nil {
		field('u', strconv.FormatUint(uint64(*c.UID), 10))
		field('g', strconv.FormatUint(uint64(c.GID), 10))
		for _, g := range c.Groups {
			field('G', strconv.FormatUint(uint64(g), 10))
		}
	}
	field('s', c.Sandbox)
	if c.SandboxInTmp {
		field('S', "")
	}
	field('t', c.Tmp)
	for _, k := range c.Keep {
		field('k', k)
	}
	for _, r := range c.ReadOnly {
		field('r', r)
	}
	field('m', c.AgentMountNS)
	if c.ExitFile != "" {
		field('x', c.ExitFile)
	}
	for _, f := range c.Cgroup {
		field('c', f)
	}
}

func decodeConfig(b []byte) (Config, error) {
	var c Config
	id := func(v string) (uint32, error) {
		n, err := strconv.ParseUint(v, 10, 32)
		return uint32(n), err
	}
	for len(b) > 0 {
		end := 0
		for end < len(b) && b[end] != 0 {
			end++
		}
		if end == len(b) || end == 0 {
			return c, errors.New("container init: malformed configuration")
		}
		tag, v := b[0], string(b[1:end])
		b = b[end+1:]
		var err error
		switch tag {
		case 'p':
			c.Path = v
		case 'a':
			c.Args = append(c.Args, v)
		case 'e':
			c.Env = append(c.Env, v)
		case 'u':
			var u uint32
			u, err = id(v)
			c.UID = &u
		case 'g':
			c.GID, err = id(v)
		case 'G':
			var g uint32
			if g, err = id(v); err == nil {
				c.Groups = append(c.Groups, g)
			}
		case 's':
			c.Sandbox = v
		case 'S':
			c.SandboxInTmp = true
		case 't':
			c.Tmp = v
		case 'k':
			c.Keep = append(c.Keep, v)
		case 'r':
			c.ReadOnly = append(c.ReadOnly, v)
		case 'm':
			c.AgentMountNS = v
		case 'x':
			c.ExitFile = v
		case 'c':
			c.Cgroup = append(c.Cgroup, v)
		default:
			return c, errors.New("container init: unknown configuration field " + strconv.Quote(string(tag)))
		}
		if err != nil {
			return c, errors.New("container init: bad configuration field " + string(tag) + ": " + err.Error())
		}
	}
	if c.Path == "" {
		return c, errors.New("container init: no program to run")
	}
	return c, nil
}

// Message is one line the init writes to the agent: "ready" (or "ready
// joined" from an init that joined the container's cgroup itself), "pid
// N", "error TEXT" or "status W".
type Message struct {
	Ready  bool
	Joined bool // with Ready: the init is in the container's cgroup already, and starts the task
	Pid    int
	Error  string
	Status *uint32 // a syscall.WaitStatus
}

// Go is the byte the agent sends (after the configuration) once it has
// moved the init into the container's cgroup; an init that answered
// "ready joined" starts the task without it.
const Go = 'g'

// frameDigits is the width of a frame's length: a fixed width lets the
// init read the length in one read without reading past it.
const frameDigits = 10

// Frame prefixes an encoded configuration with its length (frameDigits
// digits, zero-padded, and a newline), so that the agent can keep the pipe
// open for Go.
func Frame(config []byte) []byte {
	n := strconv.Itoa(len(config))
	b := make([]byte, 0, frameDigits+1+len(config))
	for i := len(n); i < frameDigits; i++ {
		b = append(b, '0')
	}
	b = append(append(b, n...), '\n')
	return append(b, config...)
}

func (m Message) encode() []byte {
	switch {
	case m.Error != "":
		msg := []byte(m.Error)
		for i, c := range msg {
			if c == '\n' {
				msg[i] = ' '
			}
		}
		return append(append([]byte("error "), msg...), '\n')
	case m.Status != nil:
		return []byte("status " + strconv.FormatUint(uint64(*m.Status), 10) + "\n")
	case m.Ready && m.Joined:
		return []byte("ready joined\n")
	case m.Ready:
		return []byte("ready\n")
	}
	return []byte("pid " + strconv.Itoa(m.Pid) + "\n")
}

// ParseMessage reads one line the init wrote (without its newline).
func ParseMessage(line string) (Message, error) {
	switch line {
	case "ready":
		return Message{Ready: true}, nil
	case "ready joined":
		return Message{Ready: true, Joined: true}, nil
	}
	for i := 0; i < len(line); i++ {
		if line[i] != ' ' {
			continue
		}
		kind, v := line[:i], line[i+1:]
		switch kind {
		case "error":
			return Message{Error: v}, nil
		case "pid":
			n, err := strconv.Atoi(v)
			if err == nil && n > 0 {
				return Message{Pid: n}, nil
			}
		case "status":
			n, err := strconv.ParseUint(v, 10, 32)
			if err == nil {
				w := uint32(n)
				return Message{Status: &w}, nil
			}
		}
		break
	}
	return Message{}, errors.New("container init: bad message " + strconv.Quote(line))
}
