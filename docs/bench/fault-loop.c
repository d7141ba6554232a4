// The plain C loop the bench is checked against (docs/BENCHMARKS.md): mmap 256 MiB, write one
// byte a page, munmap; x8 after one warm-up. Prints ns per fault (getrusage minflt+majflt).
// Build: gcc -O2 -o fault-loop fault-loop.c
#include <stdio.h>
#include <sys/mman.h>
#include <time.h>
#include <sys/resource.h>
static long faults(void){struct rusage r;getrusage(RUSAGE_SELF,&r);return r.ru_minflt+r.ru_majflt;}
int main(void){
  size_t len=256UL<<20; struct timespec a,b;
  for(int warm=0;warm<2;warm++){
    long f0=faults(); clock_gettime(CLOCK_MONOTONIC,&a);
    int iters = warm ? 8 : 1;
    for(int i=0;i<iters;i++){
      volatile char *p=mmap(0,len,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0);
      for(size_t o=0;o<len;o+=4096) p[o]=1;
      munmap((void*)p,len);
    }
    clock_gettime(CLOCK_MONOTONIC,&b); long f=faults()-f0;
    if(warm) printf("%.1f\n",((b.tv_sec-a.tv_sec)*1e9+(b.tv_nsec-a.tv_nsec))/f);
  }
  return 0;
}
