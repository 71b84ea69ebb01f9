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
4. (Speed, issue 11.)  The consumer hands each fetched record to the streams through
   ``wait_first(callback(message), suspend_flow.wait())``: four tasks made, waited for and cancelled
   per record, so that a delivery blocked on a full stream buffer gives way when a rebalance
   suspends the flow.  Most deliveries do not block (about 82 % in the worker under a backlog; one
   blocks when its stream's buffer is full), so here the callback is first run up to its first
   suspension in place; only a delivery that does suspend goes on as a task under the same
   ``wait_first``.  Same records, same order, same offsets; the task machinery was about half
   of bare Faust's CPU per record.
5. (Speed, issue 11.)  Faust creates the worker's consumer with ``fetch_max_wait_ms=1500``.  aiokafka
   keeps one fetch in flight per broker, made of the partitions that have nothing buffered; when
   none of them gets a record, the broker holds the fetch that long, and a partition that runs dry
   meanwhile (the log topic's, while the scored topic's were asked for) waits for it: the worker
   stood idle 0.5-1.1 s at a time under a backlog.  Here the wait is ``CLOGS_FETCH_MAX_WAIT``.
``apply()`` installs them (the worker does, when it starts).  Pinned to faust-streaming==0.15.3
(setup.cfg); re-check these functions when upgrading.
"""
import asyncio
import types
from typing import cast

from aiokafka.errors import ConsumerStoppedError
from faust import worker as _worker
from faust.transport import consumer as _consumer
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




def _no_spinner(self, logger, level):
    self.spinner = None




@types.coroutine
def _resume(coro, pending):
    """Go on driving ``coro`` from the suspension ``pending`` it already yielded (a trampoline)."""
    while True:
        try:
            sent = yield pending
        except BaseException as exc:  # cancellation and the like go into the coroutine, as a Task would
            try:
                pending = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                pending = coro.send(sent)
            except StopIteration as stop:
                return stop.value


async def _continue_delivery(coro, pending):
    """``_resume`` as a native coroutine: mode's ``wait_first`` takes only ``Awaitable`` objects."""
    return await _resume(coro, pending)


async def _drain_messages(self, fetcher):
    """Faust 0.15.3's ``Consumer._drain_messages`` with deliveries run in place until one suspends."""
    callback = self.callback
    getmany = self.getmany
    consumer_should_stop = self._stopped.is_set
    fetcher_should_stop = cast(asyncio.Event, fetcher._stopped).is_set
    get_read_offset = self._read_offset.__getitem__
    set_read_offset = self._read_offset.__setitem__
    flag_consumer_fetching = _consumer.CONSUMER_FETCHING
    set_flag = self.diag.set_flag
    unset_flag = self.diag.unset_flag
    commit_every = self._commit_every
    acks_enabled_for = self.app.topics.acks_enabled_for
    yield_every = 100
    num_since_yield = 0
    sleep = asyncio.sleep
    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            set_flag(flag_consumer_fetching)
            ait = getmany(timeout=1.0)
            await self.sleep(0)
            if not self.should_stop:
                async for tp, message in ait:
                    num_since_yield += 1
                    if num_since_yield > yield_every:
                        await sleep(0)
                        num_since_yield = 0
                    offset = message.offset
                    r_offset = get_read_offset(tp)
                    if r_offset is None or offset >= r_offset:
                        gap = offset - (r_offset or 0)
                        if gap > 1 and r_offset:
                            if acks_enabled_for(message.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                        if commit_every is not None:
                            if self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                        delivery = callback(message)
                        try:
                            pending = delivery.send(None)
                        except StopIteration:
                            pass  # delivered without waiting: no tasks needed
                        else:
                            await self.wait_first(_continue_delivery(delivery, pending), self.suspend_flow.wait())
                        set_read_offset(tp, offset)
                    else:
                        self.log.dev("DROPPED MESSAGE ROFF %r: k=%r v=%r", offset, message.key, message.value)
                unset_flag(flag_consumer_fetching)
    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            self.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            self.log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as exc:
        self.log.exception("Drain messages raised: %r", exc)
        raise
    finally:
        unset_flag(flag_consumer_fetching)




_create_worker_consumer = _driver.AIOKafkaConsumerThread._create_worker_consumer


def apply(fetch_max_wait):
    """Patch Faust with the five fixes (idempotent); call it before the worker makes its consumer.
    ``fetch_max_wait``: seconds the broker may hold a fetch (fix 5)."""
    def _create_worker_consumer_with_short_fetch_wait(self, transport):
        consumer = _create_worker_consumer(self, transport)
        consumer._fetch_max_wait_ms = int(fetch_max_wait * 1000)   # read when it starts its fetcher
        return consumer

    _driver.AIOKafkaConsumerThread._fetch_records = _fetch_records
    _recovery.Recovery.on_recovery_completed = on_recovery_completed
    _worker.Worker._setup_spinner_handler = _no_spinner
    _consumer.Consumer._drain_messages = _drain_messages
    _driver.AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer_with_short_fetch_wait


def leave_unacked(app, messages):
    """Let a stopping worker go without acking ``messages``: Faust waits, when it stops, until every
    message its streams took is acked (``Consumer.wait_empty``), but a record of a multi-line event
    still pending (agents/scoring.py) must stay unacked -- its offset uncommitted -- so that the next
    reader assembles the whole event again.  They are taken off the consumer's waiting list instead."""
    unacked = app.consumer._unacked_messages
    for message in messages:
        unacked.discard(message)
