package registry

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	agentsBucket     = []byte("agents")
	frameworksBucket = []byte("frameworks")
	policyBucket     = []byte("policy")
	policyKey        = []byte("policy")
)

// Bolt is a Registry in an embedded bbolt file.
type Bolt struct {
	db *bolt.DB
}

// OpenBolt opens (creating if needed) the registry file at path.
func OpenBolt(path string) (*Bolt, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("registry: create directory for %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("registry: open %s (is another master using this --work_dir?): %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(agentsBucket); err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(frameworksBucket); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(policyBucket)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("registry: initialise %s: %w", path, err)
	}
	return &Bolt{db: db}, nil
}

func (b *Bolt) PutAgent(rec AgentRecord) error {
	v, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("registry: encode agent %s: %w", rec.ID, err)
	}
	if err := b.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(agentsBucket).Put([]byte(rec.ID), v)
	}); err != nil {
		return fmt.Errorf("registry: store agent %s: %w", rec.ID, err)
	}
	return nil
}

func (b *Bolt) DeleteAgent(id string) error {
	if err := b.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(agentsBucket).Delete([]byte(id))
	}); err != nil {
		return fmt.Errorf("registry: delete agent %s: %w", id, err)
	}
	return nil
}

func (b *Bolt) Agents() ([]AgentRecord, error) {
	var out []AgentRecord
	err := b.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(agentsBucket).ForEach(func(k, v []byte) error {
			var rec AgentRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode agent %s: %w", k, err)
			}
			out = append(out, rec)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("registry: list agents: %w", err)
	}
	return out, nil
}

func (b *Bolt) Frameworks() ([]FrameworkRecord, error) {
	var out []FrameworkRecord
	err := b.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(frameworksBucket).ForEach(func(k, v []byte) error {
			rec, err := decodeFramework(string(k), v)
			if err != nil {
				return err
			}
			out = append(out, rec)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("registry: list frameworks: %w", err)
	}
	return out, nil
}

func (b *Bolt) PutPolicy(p Policy) error {
	v, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("registry: encode policy: %w", err)
	}
	if err := b.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(policyBucket).Put(policyKey, v)
	}); err != nil {
		return fmt.Errorf("registry: store policy: %w", err)
	}
	return nil
}

func (b *Bolt) Policy() (Policy, error) {
	var p Policy
	err := b.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(policyBucket).Get(policyKey)
		if v == nil {
			return nil
		}
		return json.Unmarshal(v, &p)
	})
	if err != nil {
		return p, fmt.Errorf("registry: read policy: %w", err)
	}
	return p, nil
}

// Apply stores every change in one bbolt transaction: one commit, one
// fsync.
func (b *Bolt) Apply(changes []Change) error {
	enc, err := encode(changes)
	if err != nil {
		return err
	}
	if err := b.db.Update(func(tx *bolt.Tx) error {
		agents, policy := tx.Bucket(agentsBucket), tx.Bucket(policyBucket)
		frameworks := tx.Bucket(frameworksBucket)
		for _, e := range enc {
			var err error
			bucket := agents
			if e.kind == kindFramework {
				bucket = frameworks
			}
			switch {
			case e.kind == kindPolicy:
				err = policy.Put(policyKey, e.value)
			case e.remove:
				err = bucket.Delete([]byte(e.key))
			default:
				err = bucket.Put([]byte(e.key), e.value)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("registry: store %d changes: %w", len(changes), err)
	}
	return nil
}

func (b *Bolt) Close() error { return b.db.Close() }
