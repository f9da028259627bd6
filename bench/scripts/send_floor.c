// The floor of one write per delivery (BENCHMARKS.md, "Issue 16 on a quiet
// machine"): a thread pinned to CPU 0 writes 150-byte messages (a
// keystroke's update as a WebSocket text frame), one send() each,
// round-robin over 200 loopback TCP connections that a thread on CPU 1
// drains; prints sends per CPU-second of the writing thread (RUSAGE_THREAD).
// As fast as it can, for 2 s: the reader wakes less often than once a send,
// so this is the cost of the send itself, not of waking anyone.
//
//   gcc -O2 -Wall -o /tmp/send_floor bench/scripts/send_floor.c -lpthread && /tmp/send_floor
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>
#define N 200
static int rfd[N];
static volatile int stop;
static void pin(int cpu){cpu_set_t s;CPU_ZERO(&s);CPU_SET(cpu,&s);sched_setaffinity(0,sizeof s,&s);}
static void* reader(void*a){pin(1);int ep=epoll_create1(0);for(int i=0;i<N;i++){struct epoll_event e={.events=EPOLLIN,.data.fd=rfd[i]};epoll_ctl(ep,EPOLL_CTL_ADD,rfd[i],&e);}
 char buf[65536];struct epoll_event ev[64];while(!stop){int n=epoll_wait(ep,ev,64,100);for(int i=0;i<n;i++)while(recv(ev[i].data.fd,buf,sizeof buf,MSG_DONTWAIT)>0);}return 0;}
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(void){int wfd[N];
 int l=socket(AF_INET,SOCK_STREAM,0);struct sockaddr_in a={.sin_family=AF_INET,.sin_addr.s_addr=htonl(0x7f000001)};bind(l,(void*)&a,sizeof a);listen(l,N);socklen_t al=sizeof a;getsockname(l,(void*)&a,&al);
 for(int i=0;i<N;i++){wfd[i]=socket(AF_INET,SOCK_STREAM,0);connect(wfd[i],(void*)&a,sizeof a);rfd[i]=accept(l,0,0);int one=1;setsockopt(wfd[i],IPPROTO_TCP,TCP_NODELAY,&one,sizeof one);}
 pthread_t t;pthread_create(&t,0,reader,0);pin(0);char msg[150];memset(msg,'x',150);
 struct rusage r0,r1;double t0;long sent;double cpu;
 // unpaced: as fast as it can
 getrusage(RUSAGE_THREAD,&r0);t0=now();sent=0;while(now()-t0<2.0){send(wfd[sent%N],msg,150,0);sent++;}getrusage(RUSAGE_THREAD,&r1);
 cpu=(r1.ru_utime.tv_sec-r0.ru_utime.tv_sec)+(r1.ru_utime.tv_usec-r0.ru_utime.tv_usec)*1e-6+(r1.ru_stime.tv_sec-r0.ru_stime.tv_sec)+(r1.ru_stime.tv_usec-r0.ru_stime.tv_usec)*1e-6;
 printf("%ld sends in 2 s, CPU %.3f s -> %.0f sends per CPU-s (%.2f us each)\n",sent,cpu,sent/cpu,cpu/sent*1e6);
 stop=1;pthread_join(t,0);return 0;}
