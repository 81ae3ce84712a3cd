package pool

import (
	metallbv1beta1 "go.universe.tf/metallb/api/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Eligibility evaluates the advertisements against this node's labels: the result maps the name of every ad whose
// nodeSelectors match (all nodes when it has none) to the sum of the weights of its matching
// preferredNodeSelectors. Ads the node is not eligible for are absent. Each node publishes its own result in gossip,
// so the ranking never needs another node's labels. Selectors must have passed Expand.
func Eligibility(ads []metallbv1beta1.L2Advertisement, nodeLabels map[string]string) map[string]int64 {
	ls := labels.Set(nodeLabels)
	out := map[string]int64{}
	for _, a := range ads {
		eligible := len(a.Spec.NodeSelectors) == 0
		for _, s := range a.Spec.NodeSelectors {
			if sel, err := metav1.LabelSelectorAsSelector(&s); err == nil && sel.Matches(ls) {
				eligible = true
				break
			}
		}
		if !eligible {
			continue
		}
		var score int64
		for _, p := range a.Spec.PreferredNodeSelectors {
			if sel, err := metav1.LabelSelectorAsSelector(&p.Preference); err == nil && sel.Matches(ls) {
				score += int64(p.Weight)
			}
		}
		out[a.Name] = score
	}
	return out
}
