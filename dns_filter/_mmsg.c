/* Read and answer a burst of UDP queries with one recvmmsg and one sendmmsg.
 *
 * Why C: Python's socket module has neither call, and per datagram its
 * recvfrom/sendto build and parse an address tuple each time (~1 us of the
 * ~10 us a cached answer costs; measured in bench/dns_bench.py). Here the
 * client's address stays a raw sockaddr from the read to the answer.
 *
 * recv_burst(fd, max) -> [(data: bytes, host: str, peer: bytes), ...]
 *     [] when the queue is empty; OSError for any other failure.
 * send_burst(fd, [(data: bytes, peer: bytes), ...]) -> int
 *     sends each answer to its peer; an answer the kernel refuses (full
 *     buffer, unreachable) is skipped, as a lost datagram; returns how many went.
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE
#include <Python.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#define BURST 64
#define QUERY_BYTES 4096

static struct mmsghdr msgs[BURST];
static struct iovec iovs[BURST];
static struct sockaddr_storage peers[BURST];
static char buffers[BURST][QUERY_BYTES];

static PyObject *host_of(const struct sockaddr_storage *ss, socklen_t len)
{
    char host[NI_MAXHOST];
    if (ss->ss_family == AF_INET) {
        /* the common case, without getnameinfo's overhead */
        if (!inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, host, sizeof host))
            return PyErr_SetFromErrno(PyExc_OSError);
    } else {
        /* as Python's recvfrom: numeric, with %scope for link-local */
        int rc = getnameinfo((const struct sockaddr *)ss, len, host, sizeof host, NULL, 0,
                             NI_NUMERICHOST);
        if (rc != 0) {
            PyErr_Format(PyExc_OSError, "getnameinfo: %s", gai_strerror(rc));
            return NULL;
        }
    }
    return PyUnicode_FromString(host);
}

static PyObject *recv_burst(PyObject *Py_UNUSED(self), PyObject *args)
{
    int fd, max, i, n;
    if (!PyArg_ParseTuple(args, "ii", &fd, &max))
        return NULL;
    if (max < 1 || max > BURST) {
        PyErr_Format(PyExc_ValueError, "max must be 1-%d", BURST);
        return NULL;
    }
    for (i = 0; i < max; i++) {
        iovs[i].iov_base = buffers[i];
        iovs[i].iov_len = QUERY_BYTES;
        memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
        msgs[i].msg_hdr.msg_name = &peers[i];
        msgs[i].msg_hdr.msg_namelen = sizeof peers[i];
        msgs[i].msg_hdr.msg_iov = &iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    do {
        n = recvmmsg(fd, msgs, (unsigned)max, MSG_DONTWAIT, NULL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return PyList_New(0);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    PyObject *out = PyList_New(n);
    if (!out)
        return NULL;
    for (i = 0; i < n; i++) {
        /* a datagram longer than the buffer arrives cut (MSG_TRUNC): parsing
         * rejects it like Python's recvfrom(4096) would have */
        PyObject *host = host_of(&peers[i], msgs[i].msg_hdr.msg_namelen);
        if (!host) {
            Py_DECREF(out);
            return NULL;
        }
        PyObject *item = Py_BuildValue(
            "(y#Ny#)", buffers[i], (Py_ssize_t)msgs[i].msg_len, host,
            (const char *)&peers[i], (Py_ssize_t)msgs[i].msg_hdr.msg_namelen);
        if (!item) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, item);
    }
    return out;
}

static PyObject *send_burst(PyObject *Py_UNUSED(self), PyObject *args)
{
    int fd;
    PyObject *replies;
    if (!PyArg_ParseTuple(args, "iO!", &fd, &PyList_Type, &replies))
        return NULL;
    Py_ssize_t total = PyList_GET_SIZE(replies), start = 0, sent = 0;
    while (start < total) {
        Py_ssize_t count = total - start < BURST ? total - start : BURST, i;
        for (i = 0; i < count; i++) {
            PyObject *item = PyList_GET_ITEM(replies, start + i);
            const char *data, *peer;
            Py_ssize_t data_len, peer_len;
            if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2 ||
                PyBytes_AsStringAndSize(PyTuple_GET_ITEM(item, 0), (char **)&data, &data_len) < 0 ||
                PyBytes_AsStringAndSize(PyTuple_GET_ITEM(item, 1), (char **)&peer, &peer_len) < 0) {
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_TypeError, "replies are (bytes, peer bytes) tuples");
                return NULL;
            }
            if (peer_len > (Py_ssize_t)sizeof(struct sockaddr_storage)) {
                PyErr_SetString(PyExc_ValueError, "peer longer than a sockaddr");
                return NULL;
            }
            iovs[i].iov_base = (void *)data;
            iovs[i].iov_len = (size_t)data_len;
            memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
            msgs[i].msg_hdr.msg_name = (void *)peer;
            msgs[i].msg_hdr.msg_namelen = (socklen_t)peer_len;
            msgs[i].msg_hdr.msg_iov = &iovs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int n;
        do {
            n = sendmmsg(fd, msgs, (unsigned)count, MSG_DONTWAIT);
        } while (n < 0 && errno == EINTR);
        if (n < 0) {
            start += 1; /* the first one failed: UDP may drop it, go on with the rest */
        } else {
            start += n;
            sent += n;
        }
    }
    return PyLong_FromSsize_t(sent);
}

static PyMethodDef methods[] = {
    {"recv_burst", recv_burst, METH_VARARGS, "Read up to max datagrams without blocking."},
    {"send_burst", send_burst, METH_VARARGS, "Send (data, peer) answers; returns how many went."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_mmsg", NULL, -1, methods};

PyMODINIT_FUNC PyInit__mmsg(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddIntConstant(m, "BURST", BURST) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
