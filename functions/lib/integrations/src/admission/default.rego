# Gantry's default admission policy. `deny` is the set of reasons to refuse a release; it is
# admitted when the set is empty. Each reason names the component and the rule. The input is
# documented in docs/admission.md.
package gantry.admission

import rego.v1

# Every image is signed by one of the environment's keys or keyless identities.
deny contains msg if {
	some c in input.components
	c.signature.verdict != "verified"
	msg := sprintf("%s: not signed by a trusted key (rule signature)", [c.component])
}

# A keyless signature counts only with its transparency-log entry: the log's promise is the
# trusted time its short-lived certificate was valid at. A policy that trusts a CA's
# long-lived certificates without a log can drop this rule.
deny contains msg if {
	some c in input.components
	c.signature.verdict == "verified"
	c.signature.identity
	not c.signature.log
	msg := sprintf("%s: signed by %s without a transparency-log entry (rule tlog)", [c.component, c.signature.identity.subject])
}

# Every image has verified SLSA provenance...
deny contains msg if {
	some c in input.components
	count(c.provenance) == 0
	msg := sprintf("%s: no verified provenance (rule provenance)", [c.component])
}

# ...from a builder the environment trusts...
deny contains msg if {
	some c in input.components
	count(c.provenance) > 0
	not trusted_provenance(c)
	builders := [p.builderId | some p in c.provenance]
	msg := sprintf("%s: built by %v, not a trusted builder (rule builder)", [c.component, builders])
}

# ...for the release's own commit (and repository, when the release names one).
deny contains msg if {
	some c in input.components
	trusted_provenance(c)
	not built_from_release(c)
	commits := [p.commit | some p in c.provenance; trusted(p)]
	msg := sprintf("%s: built from commit %v, the release names %v (rule source)", [c.component, commits, input.release.sourceRef.commitSha])
}

# Every image has a verified SBOM.
deny contains msg if {
	some c in input.components
	count(c.sboms) == 0
	msg := sprintf("%s: no verified SBOM (rule sbom)", [c.component])
}

# No critical vulnerability, unless a VEX statement says the image is not affected.
deny contains msg if {
	some c in input.components
	some v in c.vulnerabilities
	v.severity == "critical"
	not not_affected(c, v.id)
	msg := sprintf("%s: critical vulnerability %s (rule vulnerabilities)", [c.component, v.id])
}

trusted(p) if p.builderId in input.environment.trustedBuilders

trusted_provenance(c) if {
	some p in c.provenance
	trusted(p)
}

built_from_release(c) if {
	some p in c.provenance
	trusted(p)
	input.release.sourceRef.commitSha != null
	p.commit == input.release.sourceRef.commitSha
	same_repository(p)
}

same_repository(_) if input.release.sourceRef.repository == null

same_repository(p) if {
	input.release.sourceRef.repository != null
	is_string(p.sourceRepository)
	repo := trim_suffix(lower(input.release.sourceRef.repository), ".git")
	built := trim_suffix(lower(p.sourceRepository), ".git")
	some ok in [built == repo, endswith(built, concat("", ["/", repo]))]
	ok
}

not_affected(c, id) if {
	some s in c.vex
	s.vulnerability == id
	s.status == "not_affected"
}
