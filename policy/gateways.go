package policy

// DefaultRevision is the revision Istio's default injector answers to: the
// `default` revision tag of a revisioned install, or the revision of an
// install without --revision. Gateways excluded from the split stay there
// unless the policy names another revision.
const DefaultRevision = "default"

// GatewayPlacement says where excluded gateway pods (gateways: exclude)
// stay, so that they are injected deliberately and never left to nothing.
// defaultLive reports whether DefaultRevision answers (a live tag or
// revision of that name); down is indexed like Targets, as in PodSubject.
//
// In order: the policy's gatewayRevision (the operator's choice, used even
// when down, so the refusal names it); else DefaultRevision, where Istio's
// gateway charts put them without the router; else the first available
// target in list order (by convention the revision in use today). chosen
// is true when the router made the choice for the operator, who should be
// told. rev is "" only when nothing is available.
func (p *Policy) GatewayPlacement(defaultLive bool, down []bool) (rev string, chosen bool) {
	if p.GatewayRevision != "" {
		return p.GatewayRevision, false
	}
	if defaultLive {
		return DefaultRevision, true
	}
	for i, t := range p.Targets {
		if down == nil || !down[i] {
			return t.Revision, true
		}
	}
	return "", true
}
