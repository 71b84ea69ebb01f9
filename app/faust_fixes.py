"""Work-arounds for Faust 0.15.3 races that lose records around a rebalance (issue 9, faust-streaming#596).

1. Faust hands aiokafka its *live* set of active partitions.  aiokafka reads an empty set as "every
   partition", and the set empties while a fetch waits (pause at revoke/assignment, end of changelog
   recovery, standby phase).  Records of paused partitions then come back, Faust drops them, and
   aiokafka's position has already moved past them: they are never read (or read out of order).
   Here the fetch gets a frozen copy, an empty set fetches nothing, and records Faust would not
   deliver are given back by seeking to their first offset.
2. Recovery resumed the stream partitions *before* seeking them to the committed offsets and then
   resumed flow control, which clears the stream buffers: records delivered during the seek were
   cleared while the consumer counted them as read (the gap that faust-streaming#596 describes).
   Here the seek comes first, the buffers are cleared, and only then are the partitions resumed.
3. (Speed, issue 11.)  At ``-l warn`` or above, Faust's worker keeps a terminal spinner that it
   feeds with *every* log record: it sets the root logger to DEBUG, so each debug call in Faust and
   aiokafka (one per message sent, among others) builds a record for nothing.  The spinner is off here.
Pinned to faust-streaming==0.15.3 (setup.cfg); re-check these functions when upgrading.
"""
import asyncio

from aiokafka.errors import ConsumerStoppedError
from faust import worker as _worker
from faust.tables import recovery as _recovery
from faust.transport.drivers import aiokafka as _driver


async def _fetch_records(self, consumer, active_partitions, timeout=None, max_records=None):
    if not self.consumer.flow_active:
        return {}
    fetcher = consumer._fetcher
    if consumer._closed or fetcher._closed:
        raise ConsumerStoppedError()
    partitions = frozenset(active_partitions)
    if not partitions:
        return {}
    with fetcher._subscriptions.fetch_context():
        records = await fetcher.fetched_records(partitions, timeout=timeout, max_records=max_records)
    live = self.consumer._active_partitions or set()
    buffered = self.consumer._buffered_partitions
    for tp in list(records):
        if not self.consumer.flow_active or (tp not in live and tp not in buffered):
            consumer.seek(tp, records[tp][0].offset)
            del records[tp]
    return records


async def on_recovery_completed(self, generation_id=0):
    consumer = self.app.consumer
    self.log.info("Restore complete!")
    await self.app.on_rebalance_complete.send()
    self._set_recovery_ended()
    callback_coros = [
        asyncio.ensure_future(table.on_recovery_completed(self.actives_for_table[table],
                                                          self.standbys_for_table[table]))
        for table in self.tables.values()
    ]
    if callback_coros:
        await asyncio.wait(callback_coros)
    assignment = consumer.assignment()
    if self.app.consumer_generation_id != generation_id:
        self.log.warning(f"Recovery rebalancing again app id {self.app.consumer_generation_id} param {generation_id}")
        return
    if assignment:
        self.log.info("Seek stream partitions to committed offsets.")
        await self._wait(consumer.perform_seek(), timeout=self.app.conf.broker_request_timeout)
    self.completed.set()
    self.app.flow_control.resume()  # clears the stream buffers: nothing of the stream partitions is in them yet
    consumer.resume_partitions({tp for tp in assignment if not self._is_changelog_tp(tp)})
    consumer.resume_flow()
    await self.app._fetcher.maybe_start()
    self.tables.on_actives_ready()
    if not self.app.assignor.assigned_standbys():
        self.tables.on_standbys_ready()
    self.app.on_rebalance_end()
    self.log.info("Worker ready")


_driver.AIOKafkaConsumerThread._fetch_records = _fetch_records
_recovery.Recovery.on_recovery_completed = on_recovery_completed


def _no_spinner(self, logger, level):
    self.spinner = None


_worker.Worker._setup_spinner_handler = _no_spinner
