# METADATA
# title: Form events share email
# description: >-
#   Every form event sends the contact's email to Meta: it is the match key that finds most
#   people (R15), and a form without it reports conversions Meta can rarely attribute.
package convctl.form_email

import rego.v1

deny contains msg if {
	some change in input.changes
	change.kind == "event"
	is_object(change.after.spec.trigger.formSubmission)
	not shares_email(change.after.spec.dataSharing)
	msg := sprintf("%s: a form event must share email (add email to spec.dataSharing.properties)", [change.address])
}

shares_email(sharing) if "email" in sharing.properties

# a mapped property, e.g. {property: work_email, as: em}
shares_email(sharing) if {
	some mapping in sharing.properties
	mapping.as == "em"
}
