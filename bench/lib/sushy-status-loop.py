# bench/lib/sushy-status-loop.py — N power-state reads through python3-sushy, its session reused
# (one Sushy object, system.refresh() = GET of the ComputerSystem). Prints one JSON line.
# usage: python3 sushy-status-loop.py PORT USER PASSWORD_ENV CA_FILE CALLS
import json, os, sys, time
import sushy
port, user, pw_env, ca, calls = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
t0 = time.perf_counter()
s = sushy.Sushy(f'https://127.0.0.1:{port}/redfish/v1', verify=ca, auth=sushy.auth.SessionAuth(user, os.environ[pw_env]))
m = s.get_system()
t1 = time.perf_counter()
answered = 0
for _ in range(calls):
    m.refresh(force=True)
    if m.power_state is not None:
        answered += 1
t2 = time.perf_counter()
print(json.dumps({'calls': calls, 'setupMs': (t1 - t0) * 1000, 'loopMs': (t2 - t1) * 1000, 'answered': answered}))
