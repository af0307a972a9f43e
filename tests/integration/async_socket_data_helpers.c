/* The data-path helpers of the integration tests, declared in async_socket_data_helpers.h;
 * compiled once into async_socket_data_helpers, which CMake links into every test that includes
 * the header. */
#include "async_socket_data_helpers.h"

void env_begin(LEAK_MARK* mark)
{
    mark->allocations = sys_fault_live_allocations();
    mark->fds = test_count_open_fds();
    assert_true(mark->fds > 0);
    assert_int_equal(platform_init(), 0);
}

void env_end(const LEAK_MARK* mark)
{
    platform_deinit();
    sys_fault_set_send_limit(0);
    sys_fault_set_recv_limit(0);
    assert_int_equal(sys_fault_live_allocations(), mark->allocations);
    assert_int_equal(test_count_open_fds(), mark->fds);
}

void set_io_timeouts(int fd, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
}

void make_pair(int fds[2], int sndbuf, int rcvbuf)
{
    assert_int_equal(test_tcp_pair(fds, sndbuf, rcvbuf), 0);
    set_io_timeouts(fds[0], 5000);
    set_io_timeouts(fds[1], 5000);
}

int bytes_waiting(int fd)
{
    int n = -1;
    if (ioctl(fd, FIONREAD, &n) != 0)
    {
        return -1;
    }
    return n;
}

void on_open_record(void* context, ASYNC_SOCKET_OPEN_RESULT result)
{
    atomic_int* recorded = context;
    atomic_store(recorded, (int)result + 1);
}

ASYNC_SOCKET_HANDLE open_socket_with(int fd, ON_ASYNC_SOCKET_SEND on_send, void* send_context, ON_ASYNC_SOCKET_RECV on_recv, void* recv_context)
{
    ASYNC_SOCKET_HANDLE handle = (on_send == NULL) ? async_socket_create(NULL, fd) :
        async_socket_create_with_transport(NULL, fd, on_send, send_context, on_recv, recv_context);
    assert_non_null(handle);
    atomic_int opened;
    atomic_init(&opened, 0);
    assert_int_equal(async_socket_open_async(handle, on_open_record, &opened), 0);
    TEST_WAIT_UNTIL(atomic_load(&opened) != 0, 2000);
    assert_int_equal(atomic_load(&opened), (int)ASYNC_SOCKET_OPEN_OK + 1);
    return handle;
}

ASYNC_SOCKET_HANDLE open_socket(int fd)
{
    return open_socket_with(fd, NULL, NULL, NULL, NULL);
}

ASYNC_SOCKET_HANDLE env_begin_with_socket(LEAK_MARK* mark, int fds[2], int sndbuf, int rcvbuf)
{
    env_begin(mark);
    make_pair(fds, sndbuf, rcvbuf);
    return open_socket(fds[0]);
}

void env_end_with_socket(ASYNC_SOCKET_HANDLE socket, int peer_fd, const LEAK_MARK* mark)
{
    async_socket_destroy(socket);
    assert_int_equal(close(peer_fd), 0);
    env_end(mark);
}

void plain_io_init(PLAIN_IO* io, int fd, uint64_t base, uint64_t total, size_t chunk, unsigned sleep_us)
{
    memset(io, 0, sizeof(*io));
    io->fd = fd;
    io->base = base;
    io->total = total;
    io->chunk = chunk;
    io->sleep_us = sleep_us;
    io->mismatch_at = UINT64_MAX;
}

/* One recv of `want` bytes into buffer, checked against the pattern: the count, or <= 0 with
 * io->error set (a wrong byte sets -2 and io->mismatch_at). */
static ssize_t plain_read_step(PLAIN_IO* io, uint8_t* buffer, size_t want)
{
    ssize_t got = recv(io->fd, buffer, want, 0);
    if (got <= 0)
    {
        io->error = (got == 0) ? -1 : errno;
        return -1;
    }
    size_t good = test_check_pattern(buffer, (size_t)got, io->base + io->done);
    if (good != (size_t)got)
    {
        io->error = -2;
        io->mismatch_at = io->done + good;
        return -1;
    }
    return got;
}

/* One send of the next `want` bytes of the pattern: the count, or <= 0 with io->error set. */
static ssize_t plain_write_step(PLAIN_IO* io, uint8_t* buffer, size_t want)
{
    test_fill_pattern(buffer, want, io->base + io->done);
    ssize_t sent = send(io->fd, buffer, want, MSG_NOSIGNAL);
    if (sent <= 0)
    {
        io->error = errno;
        return -1;
    }
    return sent;
}

/* Moves io->total bytes in calls of at most io->chunk, retrying EINTR and pausing io->sleep_us
 * after every call; stops at the first failed step. */
static void plain_io_run(PLAIN_IO* io, ssize_t (*step)(PLAIN_IO* io, uint8_t* buffer, size_t want))
{
    uint8_t* buffer = malloc(io->chunk);
    if (buffer == NULL)
    {
        io->error = ENOMEM;
        return;
    }
    while (io->done < io->total)
    {
        size_t want = io->chunk;
        if (io->total - io->done < want)
        {
            want = (size_t)(io->total - io->done);
        }
        ssize_t moved = step(io, buffer, want);
        if (moved < 0 && io->error == EINTR)
        {
            io->error = 0;
            continue;
        }
        if (moved <= 0)
        {
            break;
        }
        io->done += (uint64_t)moved;
        if (io->sleep_us != 0)
        {
            (void)usleep(io->sleep_us);
        }
    }
    free(buffer);
}

void* plain_read_run(void* arg)
{
    plain_io_run(arg, plain_read_step);
    return NULL;
}

void* plain_write_run(void* arg)
{
    plain_io_run(arg, plain_write_step);
    return NULL;
}

void plain_io_start(PLAIN_IO* io, void* (*run)(void*))
{
    assert_int_equal(pthread_create(&io->thread, NULL, run, io), 0);
}

void plain_io_join_and_check(PLAIN_IO* io)
{
    assert_int_equal(pthread_join(io->thread, NULL), 0);
    if (io->error == -2)
    {
        fail_msg("wrong byte at stream offset %llu", (unsigned long long)io->mismatch_at);
    }
    assert_int_equal(io->error, 0);
    assert_true(io->done == io->total);
}

void plain_read_all(int fd, uint64_t base, uint64_t total)
{
    PLAIN_IO io;
    plain_io_init(&io, fd, base, total, 65536, 0);
    (void)plain_read_run(&io);
    if (io.error == -2)
    {
        fail_msg("wrong byte at stream offset %llu", (unsigned long long)io.mismatch_at);
    }
    assert_int_equal(io.error, 0);
    assert_true(io.done == total);
}

void plain_write_all(int fd, uint64_t base, uint64_t total)
{
    PLAIN_IO io;
    plain_io_init(&io, fd, base, total, 65536, 0);
    (void)plain_write_run(&io);
    assert_int_equal(io.error, 0);
    assert_true(io.done == total);
}

void assert_no_more_bytes(int fd)
{
    uint8_t byte;
    ssize_t got = recv(fd, &byte, 1, MSG_DONTWAIT);
    assert_int_equal(got, -1);
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
}

void send_track_init(SEND_TRACK* track, uint32_t count)
{
    track->slots = calloc(count, sizeof(SEND_SLOT));
    assert_non_null(track->slots);
    track->count = count;
    for (uint32_t i = 0; i < count; i++)
    {
        track->slots[i].track = track;
        atomic_init(&track->slots[i].calls, 0);
        atomic_init(&track->slots[i].result, -1);
    }
    atomic_init(&track->done, 0);
    atomic_init(&track->ok, 0);
    atomic_init(&track->abandoned, 0);
    atomic_init(&track->errors, 0);
}

void send_track_deinit(SEND_TRACK* track)
{
    free(track->slots);
    track->slots = NULL;
}

void on_send_tracked(void* context, ASYNC_SOCKET_SEND_RESULT result)
{
    SEND_SLOT* slot = context;
    atomic_store(&slot->result, (int)result);
    (void)atomic_fetch_add(&slot->calls, 1);
    if (result == ASYNC_SOCKET_SEND_OK)
    {
        (void)atomic_fetch_add(&slot->track->ok, 1);
    }
    else if (result == ASYNC_SOCKET_SEND_ABANDONED)
    {
        (void)atomic_fetch_add(&slot->track->abandoned, 1);
    }
    else
    {
        (void)atomic_fetch_add(&slot->track->errors, 1);
    }
    (void)atomic_fetch_add(&slot->track->done, 1);
}

void send_track_check_all(SEND_TRACK* track, ASYNC_SOCKET_SEND_RESULT expected)
{
    for (uint32_t i = 0; i < track->count; i++)
    {
        if (atomic_load(&track->slots[i].calls) != 1 || atomic_load(&track->slots[i].result) != (int)expected)
        {
            fail_msg("send %u: %u callbacks, last result %d (expected one, with %d)", i,
                atomic_load(&track->slots[i].calls), atomic_load(&track->slots[i].result), (int)expected);
        }
    }
    assert_int_equal(atomic_load(&track->done), track->count);
}

ASYNC_SOCKET_SEND_SYNC_RESULT send_piece(ASYNC_SOCKET_HANDLE handle, uint8_t* source, uint64_t offset, uint32_t length, uint32_t pieces, SEND_SLOT* slot, uint64_t* elapsed_ms)
{
    ASYNC_SOCKET_BUFFER buffers[16];
    if (pieces > 16)
    {
        pieces = 16;
    }
    if (pieces > length)
    {
        pieces = length;
    }
    uint32_t at = 0;
    for (uint32_t i = 0; i < pieces; i++)
    {
        /* uneven pieces: the first ones are small, the last takes the rest */
        uint32_t left = length - at;
        uint32_t size = (i + 1 == pieces) ? left : 1 + (left / (pieces - i)) / (i + 2);
        buffers[i].buffer = source + offset + at;
        buffers[i].length = size;
        at += size;
    }
    uint64_t start = test_now_ms();
    ASYNC_SOCKET_SEND_SYNC_RESULT result = async_socket_send_async(handle, buffers, pieces, on_send_tracked, slot);
    if (elapsed_ms != NULL)
    {
        *elapsed_ms = test_now_ms() - start;
    }
    return result;
}

void stream_rx_init(STREAM_RX* rx, ASYNC_SOCKET_HANDLE socket, uint64_t base, uint64_t expected, int slot_count, uint32_t slot_size, uint32_t pieces)
{
    memset(rx, 0, sizeof(*rx));
    rx->socket = socket;
    rx->base = base;
    rx->expected = expected;
    rx->slot_count = slot_count;
    for (int i = 0; i < slot_count; i++)
    {
        rx->slots[i].rx = rx;
        rx->slots[i].buffer = malloc(slot_size);
        assert_non_null(rx->slots[i].buffer);
        rx->slots[i].size = slot_size;
        rx->slots[i].pieces = pieces;
    }
}

void stream_rx_deinit(STREAM_RX* rx)
{
    for (int i = 0; i < rx->slot_count; i++)
    {
        free(rx->slots[i].buffer);
    }
}

int stream_rx_post(RX_SLOT* slot)
{
    ASYNC_SOCKET_BUFFER buffers[4];
    uint32_t pieces = slot->pieces < 1 ? 1 : (slot->pieces > 4 ? 4 : slot->pieces);
    uint32_t at = 0;
    for (uint32_t i = 0; i < pieces; i++)
    {
        uint32_t size = (i + 1 == pieces) ? slot->size - at : slot->size / (pieces * 2);
        buffers[i].buffer = slot->buffer + at;
        buffers[i].length = size;
        at += size;
    }
    (void)atomic_fetch_add(&slot->rx->posted, 1);
    int result = async_socket_receive_async(slot->rx->socket, buffers, pieces, stream_rx_on_receive, slot);
    if (result != 0)
    {
        (void)atomic_fetch_sub(&slot->rx->posted, 1);
    }
    return result;
}

void stream_rx_on_receive(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    RX_SLOT* slot = context;
    STREAM_RX* rx = slot->rx;
    if (atomic_exchange(&rx->in_callback, 1) != 0)
    {
        (void)atomic_fetch_add(&rx->overlaps, 1);
    }
    bool repost = false;
    if (result == ASYNC_SOCKET_RECEIVE_OK)
    {
        uint64_t at = atomic_load(&rx->received);
        if (bytes == 0 || bytes > slot->size || at + bytes > rx->expected ||
            test_check_pattern(slot->buffer, bytes, rx->base + at) != bytes)
        {
            (void)atomic_fetch_add(&rx->mismatches, 1);
        }
        atomic_store(&rx->received, at + bytes);
        (void)atomic_fetch_add(&rx->ok, 1);
        repost = (at + bytes < rx->expected);
    }
    else if (result == ASYNC_SOCKET_RECEIVE_ABANDONED)
    {
        (void)atomic_fetch_add(&rx->abandoned, 1);
    }
    else
    {
        (void)atomic_fetch_add(&rx->errors, 1);
    }
    if (repost && stream_rx_post(slot) != 0)
    {
        (void)atomic_fetch_add(&rx->repost_failures, 1);
    }
    atomic_store(&rx->in_callback, 0);
    (void)atomic_fetch_add(&rx->completed, 1);
}

void stream_rx_start(STREAM_RX* rx)
{
    for (int i = 0; i < rx->slot_count; i++)
    {
        assert_int_equal(stream_rx_post(&rx->slots[i]), 0);
    }
}

void stream_rx_wait(STREAM_RX* rx, unsigned timeout_ms)
{
    TEST_WAIT_UNTIL(atomic_load(&rx->received) >= rx->expected || atomic_load(&rx->mismatches) != 0 ||
        atomic_load(&rx->errors) != 0 || atomic_load(&rx->abandoned) != 0, timeout_ms);
    assert_int_equal(atomic_load(&rx->mismatches), 0);
    assert_int_equal(atomic_load(&rx->errors), 0);
    assert_int_equal(atomic_load(&rx->abandoned), 0);
    assert_int_equal(atomic_load(&rx->overlaps), 0);
    assert_int_equal(atomic_load(&rx->repost_failures), 0);
    assert_true(atomic_load(&rx->received) == rx->expected);
}

void stream_rx_check_closed(STREAM_RX* rx)
{
    assert_int_equal(atomic_load(&rx->completed), atomic_load(&rx->posted));
    assert_int_equal(atomic_load(&rx->ok) + atomic_load(&rx->abandoned), atomic_load(&rx->posted));
    assert_int_equal(atomic_load(&rx->errors), 0);
    assert_int_equal(atomic_load(&rx->overlaps), 0);
}

void transport_init(TRANSPORT* transport, int fd, size_t max_send, size_t max_recv, unsigned eintr_every)
{
    memset(transport, 0, sizeof(*transport));
    transport->fd = fd;
    transport->max_send = max_send;
    transport->max_recv = max_recv;
    transport->eintr_every = eintr_every;
}

void transport_check_handle(TRANSPORT* transport, ASYNC_SOCKET_HANDLE async_socket)
{
    ASYNC_SOCKET_HANDLE expected = atomic_load(&transport->handle);
    if (expected != NULL && expected != async_socket)
    {
        (void)atomic_fetch_add(&transport->wrong_handle, 1);
    }
}

int transport_on_send(void* context, ASYNC_SOCKET_HANDLE async_socket, const void* buf, size_t len)
{
    TRANSPORT* transport = context;
    transport_check_handle(transport, async_socket);
    unsigned call = atomic_fetch_add(&transport->send_calls, 1);
    int fail = atomic_load(&transport->fail_send_errno);
    if (fail != 0)
    {
        (void)atomic_fetch_add(&transport->send_failed, 1);
        errno = fail;
        return -1;
    }
    if (transport->eintr_every != 0 && call % transport->eintr_every == 0)
    {
        (void)atomic_fetch_add(&transport->send_eintr, 1);
        errno = EINTR;
        return -1;
    }
    if (transport->max_send != 0 && len > transport->max_send)
    {
        len = transport->max_send;
    }
    ssize_t sent = send(transport->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    {
        int saved = errno;
        (void)atomic_fetch_add(&transport->send_eagain, 1);
        errno = saved;
    }
    return (int)sent;
}

int transport_on_recv(void* context, ASYNC_SOCKET_HANDLE async_socket, void* buf, size_t len)
{
    TRANSPORT* transport = context;
    transport_check_handle(transport, async_socket);
    unsigned call = atomic_fetch_add(&transport->recv_calls, 1);
    int fail = atomic_load(&transport->fail_recv_errno);
    if (fail != 0)
    {
        (void)atomic_fetch_add(&transport->recv_failed, 1);
        errno = fail;
        return -1;
    }
    if (transport->eintr_every != 0 && call % transport->eintr_every == 0)
    {
        (void)atomic_fetch_add(&transport->recv_eintr, 1);
        errno = EINTR;
        return -1;
    }
    if (transport->max_recv != 0 && len > transport->max_recv)
    {
        len = transport->max_recv;
    }
    ssize_t got = recv(transport->fd, buf, len, MSG_DONTWAIT);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    {
        int saved = errno;
        (void)atomic_fetch_add(&transport->recv_eagain, 1);
        errno = saved;
    }
    return (int)got;
}

ASYNC_SOCKET_HANDLE open_socket_transport(int fd, TRANSPORT* transport)
{
    ASYNC_SOCKET_HANDLE handle = open_socket_with(fd, transport_on_send, transport, transport_on_recv, transport);
    atomic_store(&transport->handle, handle);
    return handle;
}

void one_rx_on_receive(void* context, ASYNC_SOCKET_RECEIVE_RESULT result, uint32_t bytes)
{
    ONE_RX* one = context;
    atomic_store(&one->result, (int)result);
    atomic_store(&one->bytes, bytes);
    (void)atomic_fetch_add(&one->done, 1);
}

void one_rx_post(ASYNC_SOCKET_HANDLE socket, ONE_RX* one, uint8_t* buffer, uint32_t length)
{
    atomic_init(&one->done, 0);
    atomic_init(&one->result, -1);
    atomic_init(&one->bytes, 0);
    ASYNC_SOCKET_BUFFER payload = {.buffer = buffer, .length = length};
    assert_int_equal(async_socket_receive_async(socket, &payload, 1, one_rx_on_receive, one), 0);
}

ASYNC_SOCKET_RECEIVE_RESULT receive_once(ASYNC_SOCKET_HANDLE socket, uint8_t* buffer, uint32_t length, uint32_t* bytes)
{
    ONE_RX one;
    one_rx_post(socket, &one, buffer, length);
    TEST_WAIT_UNTIL(atomic_load(&one.done) != 0, 5000);
    test_sleep_ms(2);
    assert_int_equal(atomic_load(&one.done), 1);
    *bytes = atomic_load(&one.bytes);
    return (ASYNC_SOCKET_RECEIVE_RESULT)atomic_load(&one.result);
}

void receive_exactly(ASYNC_SOCKET_HANDLE socket, uint64_t base, uint64_t total)
{
    uint8_t buffer[4096];
    uint64_t done = 0;
    while (done < total)
    {
        uint32_t want = (total - done < sizeof(buffer)) ? (uint32_t)(total - done) : (uint32_t)sizeof(buffer);
        uint32_t bytes = 0;
        assert_int_equal(receive_once(socket, buffer, want, &bytes), ASYNC_SOCKET_RECEIVE_OK);
        assert_true(bytes > 0 && bytes <= want);
        assert_int_equal(test_check_pattern(buffer, bytes, base + done), bytes);
        done += bytes;
    }
}

uint8_t* make_pattern(uint64_t base, size_t size)
{
    uint8_t* buffer = malloc(size);
    assert_non_null(buffer);
    test_fill_pattern(buffer, size, base);
    return buffer;
}
