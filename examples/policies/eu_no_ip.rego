# METADATA
# title: No IP address for EU accounts
# description: >-
#   Events of an account labelled region=eu never send the visitor's IP address (legal's reading
#   of the GDPR for our EU business).
package convctl.eu_no_ip

import rego.v1

deny contains msg if {
	some change in input.changes
	change.kind == "event"
	change.after.spec.dataSharing.ipAddress == true
	input.desired.accounts[change.account].labels.region == "eu"
	msg := sprintf("%s: account %s is labelled region=eu, so the event must not share the IP address (set spec.dataSharing.ipAddress: false)", [change.address, change.account])
}
