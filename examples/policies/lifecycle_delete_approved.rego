# METADATA
# title: Lifecycle events are deleted only when approved
# description: >-
#   Deleting (or replacing) a lifecycle-stage event loses its history in Meta's optimization
#   (R4): the live event must carry the label approved-by (set it in git and apply first).
package convctl.lifecycle_delete_approved

import rego.v1

deny contains msg if {
	some change in input.changes
	change.kind == "event"
	"delete" in change.actions
	is_object(change.before.spec.trigger.lifecycleStageChange)
	not change.before.labels["approved-by"]
	msg := sprintf("%s: a lifecycle event is deleted without the label approved-by (add labels: {approved-by: NAME} and apply before deleting it)", [change.address])
}
