"""Work queued by the data reports' services, enqueued by their tasks when the transaction commits.

sender=DataReport, report_id=<int>: a report waits for a worker. sender=Contamination, check_id=<int>: a
training dataset waits to be measured against an eval set.
"""

from django.dispatch import Signal

data_report_queued = Signal()
contamination_queued = Signal()
