package distribution

import (
	"encoding/xml"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// siteFile is a Hadoop configuration file as encoding/xml reads it.
type siteFile struct {
	XMLName    xml.Name `xml:"configuration"`
	Properties []struct {
		Name  string `xml:"name"`
		Value string `xml:"value"`
	} `xml:"property"`
}

// parseSite parses a generated configuration file back into its
// properties, failing on a name given twice, and returns the names in
// file order too.
func parseSite(t *testing.T, data []byte) (map[string]string, []string) {
	t.Helper()
	var f siteFile
	if err := xml.Unmarshal(data, &f); err != nil {
		t.Fatalf("parse configuration: %v\n%s", err, data)
	}
	props := map[string]string{}
	var names []string
	for _, p := range f.Properties {
		if _, dup := props[p.Name]; dup {
			t.Fatalf("property %s appears twice", p.Name)
		}
		props[p.Name] = p.Value
		names = append(names, p.Name)
	}
	return props, names
}

// offer is an offer of scalars and port ranges on agent a.
func offer(agentID, host string, cpus, mem, disk float64, ports ...mesos.Value_Range) mesos.Offer {
	scalar := func(name string, v float64) mesos.Resource {
		return mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: v}}
	}
	o := mesos.Offer{
		ID:       mesos.OfferID{Value: "offer-" + agentID},
		AgentID:  mesos.AgentID{Value: agentID},
		Hostname: host,
		Resources: []mesos.Resource{
			scalar("cpus", cpus), scalar("mem", mem), scalar("disk", disk),
		},
	}
	if len(ports) > 0 {
		o.Resources = append(o.Resources, mesos.Resource{Name: "ports", Type: mesos.RANGES.Enum(), Ranges: &mesos.Value_Ranges{Range: ports}})
	}
	return o
}
