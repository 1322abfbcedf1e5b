# METADATA
# title: At most 25 events per ad account
# description: >-
#   More events on one ad account split its conversions too thin to optimize on. Advisory: the
#   plan shows a warning and apply goes ahead.
# custom:
#   advisory: true
package convctl.max_events_per_ad_account

import rego.v1

max_events := 25

deny contains msg if {
	some ad_account in {event.spec.adAccount | some event in input.desired.events}
	n := count([event | some event in input.desired.events; event.spec.adAccount == ad_account])
	n > max_events
	msg := sprintf("ad account %s would have %d events, more than %d", [ad_account, n, max_events])
}
