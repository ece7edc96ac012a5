package simulate

import (
	"fmt"

	"sigs.k8s.io/yaml"
)

// ParseUnits reads a workload list (YAML or JSON):
//
//   - namespace: shop
//     kind: Deployment
//     name: web
//     replicas: 10
//
// Unknown fields are errors, so a typo does not silently drop a workload.
func ParseUnits(data []byte) ([]Unit, error) {
	var units []Unit
	if err := yaml.UnmarshalStrict(data, &units); err != nil {
		return nil, fmt.Errorf("workload list: %w", err)
	}
	for i, u := range units {
		switch {
		case u.Namespace == "":
			return nil, fmt.Errorf("workload list: [%d].namespace: required", i)
		case u.Name == "":
			return nil, fmt.Errorf("workload list: [%d].name: required", i)
		case u.Replicas < 0:
			return nil, fmt.Errorf("workload list: [%d].replicas: must not be negative", i)
		}
		if u.Kind == "" {
			units[i].Kind = "Deployment"
		}
	}
	if len(units) == 0 {
		return nil, fmt.Errorf("workload list: no workloads")
	}
	return units, nil
}
