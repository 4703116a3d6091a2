%% savina.erl - Savina-style actor micro-benchmarks for Erlang/OTP, the Erlang peer of spool's
%% bench/run --peers. One module, one benchmark per run:
%%
%%   erl +S 2 -noshell -pa DIR -s savina main NAME [SIZE] -s init stop
%%
%% prints exactly one JSON line on stdout, e.g.
%%   {"name":"pingpong","unit":"ns/roundtrip","value":380.5,"runtime":"erlang"}
%% and a human note on stderr. Every benchmark checks its result; on a wrong result (or a crash)
%% the VM halts with status 1 and prints nothing on stdout. Only the work is timed
%% (erlang:monotonic_time), not VM start-up, process set-up that precedes the start signal, or
%% the final collection of per-process statistics used for the checks.
%%
%% SIZE is the main count of each benchmark (see default_size/1 and README.md).
-module(savina).
-export([main/1]).

-define(RING_SIZE, 100).
-define(FJ_ACTORS, 60).
-define(CHAMENEOS, 10).
-define(BIG_ACTORS, 120).
-ifndef(WATCHDOG_MS).
-define(WATCHDOG_MS, 600000). % no result after this long: fail (a worker crashed)
-endif.

default_size(pingpong) -> 1000000;      % round trips
default_size(counting) -> 10000000;     % messages
default_size(threadring) -> 1000000;    % hops
default_size(fjthroughput) -> 20000;    % messages per actor (60 actors)
default_size(fjcreation) -> 200000;     % processes
default_size(chameneos) -> 200000;      % meetings
default_size(big) -> 5000;              % pings per actor (120 actors)
default_size(_) -> undefined.

%% ---------------------------------------------------------------------------------------------
%% Entry point. Accepts atoms (from -s) or strings (from -run / escript).

main(Args) ->
    try
        {Name, Size} = parse_args(Args),
        Parent = self(),
        %% Run in a fresh process so the benchmark owns a clean mailbox.
        {Pid, Ref} = spawn_monitor(fun() -> Parent ! {self(), result, run(Name, Size)} end),
        receive
            {Pid, result, {ok, Unit, Value, Note}} ->
                erlang:demonitor(Ref, [flush]),
                io:format(standard_error, "savina ~s size=~b: ~s~n", [Name, Size, Note]),
                io:format("{\"name\":\"~s\",\"unit\":\"~s\",\"value\":~s,\"runtime\":\"erlang\"}~n",
                          [Name, Unit, fmt(Value)]);
            {Pid, result, {error, Why}} ->
                fail("~s: check failed: ~s", [Name, Why]);
            {'DOWN', Ref, process, Pid, Reason} ->
                fail("~s: crashed: ~p", [Name, Reason])
        after ?WATCHDOG_MS ->
                %% e.g. an unlinked worker (fjcreation) crashed and its message never came
                fail("~s: no result after ~b s", [Name, ?WATCHDOG_MS div 1000])
        end
    catch
        throw:{usage, Msg} -> fail("~s", [Msg]);
        C:R:St -> fail("crashed: ~p:~p ~p", [C, R, St])
    end.

fail(Fmt, Args) ->
    io:format(standard_error, "savina: " ++ Fmt ++ "~n", Args),
    erlang:halt(1).

parse_args([N]) ->
    Name = to_atom(N),
    case default_size(Name) of
        undefined -> throw({usage, "unknown benchmark " ++ to_list(N) ++ usage()});
        Size -> {Name, Size}
    end;
parse_args([N, S]) ->
    {Name, _} = parse_args([N]),
    case catch list_to_integer(to_list(S)) of
        Size when is_integer(Size), Size > 0 -> {Name, Size};
        _ -> throw({usage, "SIZE must be a positive integer, got " ++ to_list(S)})
    end;
parse_args(_) ->
    throw({usage, "usage: savina main NAME [SIZE]" ++ usage()}).

usage() ->
    "; NAME is one of pingpong counting threadring fjthroughput fjcreation chameneos big".

to_atom(A) when is_atom(A) -> A;
to_atom(L) when is_list(L) -> list_to_atom(L).

to_list(A) when is_atom(A) -> atom_to_list(A);
to_list(L) when is_list(L) -> L.

fmt(V) -> float_to_list(float(V), [{decimals, 3}, compact]).

now_ns() -> erlang:monotonic_time(nanosecond).

ns_per(Ns, Count) -> Ns / Count.
mmsg_per_s(Ns, Msgs) -> Msgs / (Ns / 1.0e9) / 1.0e6.

note(Ns, Extra) -> io_lib:format("~.3f ms, ~s", [Ns / 1.0e6, Extra]).

check(true, _Why, Ok) -> Ok;
check(false, Why, _Ok) -> {error, Why}.

%% ---------------------------------------------------------------------------------------------
%% pingpong: 2 processes, SIZE round trips. ns/roundtrip.

run(pingpong, N) ->
    Main = self(),
    Pong = spawn_link(fun pong_loop/0),
    Ping = spawn_link(fun() -> receive go -> ok end, ping_loop(N, Pong, 0, Main) end),
    T0 = now_ns(),
    Ping ! go,
    receive {Ping, done, Count} -> ok end,
    Ns = now_ns() - T0,
    Pong ! stop,
    check(Count =:= N, io_lib:format("~b round trips, expected ~b", [Count, N]),
          {ok, "ns/roundtrip", ns_per(Ns, N), note(Ns, io_lib:format("~b round trips", [N]))});

%% counting: a producer sends SIZE integers to a counter, then asks it for its count and sum.
%% M msg/s (the SIZE integer messages).

run(counting, N) ->
    Main = self(),
    Counter = spawn_link(fun() -> counter_loop(0, 0) end),
    Producer = spawn_link(fun() ->
                                  receive go -> ok end,
                                  produce(Counter, 1, N),
                                  Counter ! {get, self()},
                                  receive {count, C, S} -> Main ! {self(), done, C, S} end
                          end),
    T0 = now_ns(),
    Producer ! go,
    receive {Producer, done, Count, Sum} -> ok end,
    Ns = now_ns() - T0,
    Expect = N * (N + 1) div 2,
    check(Count =:= N andalso Sum =:= Expect,
          io_lib:format("count ~b sum ~b, expected ~b and ~b", [Count, Sum, N, Expect]),
          {ok, "M msg/s", mmsg_per_s(Ns, N), note(Ns, io_lib:format("~b messages", [N]))});

%% threadring: 100 processes in a ring pass a token SIZE hops. ns/hop.

run(threadring, H) ->
    Main = self(),
    Ring = [spawn_link(fun() -> ring_init(I, Main) end) || I <- lists:seq(0, ?RING_SIZE - 1)],
    Nexts = tl(Ring) ++ [hd(Ring)],
    [P ! {next, Nx} || {P, Nx} <- lists:zip(Ring, Nexts)],
    T0 = now_ns(),
    hd(Ring) ! {token, H},
    receive {ring_done, Last} -> ok end,
    Ns = now_ns() - T0,
    [P ! {stop, Main} || P <- Ring],
    Received = lists:sum([receive {P, received, R} -> R end || P <- Ring]),
    ExpectLast = H rem ?RING_SIZE,
    check(Last =:= ExpectLast andalso Received =:= H + 1,
          io_lib:format("token ended at ~b after ~b receptions, expected ~b and ~b",
                        [Last, Received, ExpectLast, H + 1]),
          {ok, "ns/hop", ns_per(Ns, H), note(Ns, io_lib:format("~b hops", [H]))});

%% fjthroughput: one driver sends SIZE messages to each of 60 processes (round-robin over the
%% processes); each process reports when it has received SIZE. M msg/s (60 * SIZE messages).

run(fjthroughput, N) ->
    Main = self(),
    Workers = [spawn_link(fun() -> fj_worker(N, 0, Main) end) || _ <- lists:seq(1, ?FJ_ACTORS)],
    Driver = spawn_link(fun() -> receive go -> fj_drive(N, Workers) end end),
    T0 = now_ns(),
    Driver ! go,
    [receive {W, fj_done, C} -> C end || W <- Workers],
    Ns = now_ns() - T0,
    Total = ?FJ_ACTORS * N,
    %% every worker counted exactly N (it only reports at N); collect one more check: no extras.
    [W ! {stop, Main} || W <- Workers],
    Extra = lists:sum([receive {W, extra, E} -> E end || W <- Workers]),
    check(Extra =:= 0, io_lib:format("~b unexpected extra messages", [Extra]),
          {ok, "M msg/s", mmsg_per_s(Ns, Total),
           note(Ns, io_lib:format("~b messages to ~b processes", [Total, ?FJ_ACTORS]))});

%% fjcreation: spawn SIZE processes, send each one message; each handles it (adds the value to a
%% shared sum) and exits. The last one to finish tells the main process. ns/process.

run(fjcreation, N) ->
    Main = self(),
    Left = atomics:new(2, [{signed, true}]),
    atomics:put(Left, 1, N),
    T0 = now_ns(),
    fj_create(1, N, Left, Main),
    receive fj_all_done -> ok end,
    Ns = now_ns() - T0,
    Sum = atomics:get(Left, 2),
    Expect = N * (N + 1) div 2,
    Remaining = atomics:get(Left, 1),
    check(Sum =:= Expect andalso Remaining =:= 0,
          io_lib:format("sum ~b remaining ~b, expected ~b and 0", [Sum, Remaining, Expect]),
          {ok, "ns/process", ns_per(Ns, N), note(Ns, io_lib:format("~b processes", [N]))});

%% chameneos: 10 chameneos meet through a broker (the mall) SIZE times. ns/meeting.

run(chameneos, M) ->
    Main = self(),
    Mall = spawn_link(fun() -> receive go -> mall(M, none, 0, 0, Main) end end),
    Colors = {blue, red, yellow},
    Chams = [spawn_link(fun() -> receive go -> cham_start(Mall, element(I rem 3 + 1, Colors)) end end)
             || I <- lists:seq(1, ?CHAMENEOS)],
    T0 = now_ns(),
    Mall ! go,
    [C ! go || C <- Chams],
    receive {mall_done, Meetings} -> ok end,
    Ns = now_ns() - T0,
    check(Meetings =:= 2 * M,
          io_lib:format("chameneos counted ~b meetings, expected ~b", [Meetings, 2 * M]),
          {ok, "ns/meeting", ns_per(Ns, M), note(Ns, io_lib:format("~b meetings", [M]))});

%% big: 120 processes; each sends SIZE pings, one at a time, each to a random peer (itself
%% possibly), and answers every ping with a pong. A process is done when its SIZE-th pong is
%% back; the run ends when all are done. M msg/s (pings + pongs = 2 * 120 * SIZE).

run(big, N) ->
    Main = self(),
    Actors = [spawn_link(fun() -> big_init(I, N, Main) end) || I <- lists:seq(1, ?BIG_ACTORS)],
    Peers = list_to_tuple(Actors),
    T0 = now_ns(),
    [A ! {go, Peers} || A <- Actors],
    [receive {A, big_done} -> ok end || A <- Actors],
    Ns = now_ns() - T0,
    [A ! {stop, Main} || A <- Actors],
    Stats = [receive {A, big_stats, S, P, Ans} -> {S, P, Ans} end || A <- Actors],
    Sent = lists:sum([S || {S, _, _} <- Stats]),
    Pongs = lists:sum([P || {_, P, _} <- Stats]),
    Answered = lists:sum([A || {_, _, A} <- Stats]),
    Total = ?BIG_ACTORS * N,
    check(Sent =:= Total andalso Pongs =:= Total andalso Answered =:= Total,
          io_lib:format("sent ~b pongs ~b answered ~b, expected ~b each",
                        [Sent, Pongs, Answered, Total]),
          {ok, "M msg/s", mmsg_per_s(Ns, 2 * Total),
           note(Ns, io_lib:format("~b messages among ~b processes", [2 * Total, ?BIG_ACTORS]))}).

%% ---------------------------------------------------------------------------------------------
%% pingpong

pong_loop() ->
    receive
        {ping, From} -> From ! pong, pong_loop();
        stop -> ok
    end.

ping_loop(0, _Pong, Count, Main) ->
    Main ! {self(), done, Count};
ping_loop(N, Pong, Count, Main) ->
    Pong ! {ping, self()},
    receive pong -> ping_loop(N - 1, Pong, Count + 1, Main) end.

%% ---------------------------------------------------------------------------------------------
%% counting

produce(_Counter, I, N) when I > N -> ok;
produce(Counter, I, N) ->
    Counter ! I,
    produce(Counter, I + 1, N).

counter_loop(Count, Sum) ->
    receive
        I when is_integer(I) -> counter_loop(Count + 1, Sum + I);
        {get, From} -> From ! {count, Count, Sum}
    end.

%% ---------------------------------------------------------------------------------------------
%% threadring

ring_init(I, Main) ->
    receive {next, Next} -> ring_loop(I, Next, Main, 0) end.

ring_loop(I, Next, Main, Received) ->
    receive
        {token, 0} ->
            Main ! {ring_done, I},
            ring_loop(I, Next, Main, Received + 1);
        {token, K} ->
            Next ! {token, K - 1},
            ring_loop(I, Next, Main, Received + 1);
        {stop, From} ->
            From ! {self(), received, Received}
    end.

%% ---------------------------------------------------------------------------------------------
%% fjthroughput

fj_drive(0, _Workers) -> ok;
fj_drive(N, Workers) ->
    fj_send(Workers),
    fj_drive(N - 1, Workers).

fj_send([]) -> ok;
fj_send([W | Ws]) -> W ! msg, fj_send(Ws).

fj_worker(N, N, Main) ->
    Main ! {self(), fj_done, N},
    fj_after(0);
fj_worker(N, Got, Main) ->
    receive msg -> fj_worker(N, Got + 1, Main) end.

fj_after(Extra) ->
    receive
        msg -> fj_after(Extra + 1);
        {stop, From} -> From ! {self(), extra, Extra}
    end.

%% ---------------------------------------------------------------------------------------------
%% fjcreation

fj_create(I, N, _Left, _Main) when I > N -> ok;
fj_create(I, N, Left, Main) ->
    P = spawn(fun() -> fj_created(Left, Main) end),
    P ! {work, I},
    fj_create(I + 1, N, Left, Main).

fj_created(Left, Main) ->
    receive
        {work, V} ->
            atomics:add(Left, 2, V),
            case atomics:sub_get(Left, 1, 1) of
                0 -> Main ! fj_all_done;
                _ -> ok
            end
    end.

%% ---------------------------------------------------------------------------------------------
%% chameneos (Savina's mall variant: the mall pairs requests and forwards the second request to
%% the first chameneo, which answers the second with its new colour).

mall(Left, Waiting, Faded, Sum, Main) ->
    receive
        {meet, From, Color} when Left > 0 ->
            case Waiting of
                none ->
                    mall(Left, {From, Color}, Faded, Sum, Main);
                {W, _WColor} ->
                    W ! {meet, From, Color},
                    mall(Left - 1, none, Faded, Sum, Main)
            end;
        {meet, From, _Color} ->
            From ! stop,
            mall(Left, Waiting, Faded, Sum, Main);
        {meetings, C} ->
            case Faded + 1 of
                ?CHAMENEOS -> Main ! {mall_done, Sum + C};
                F -> mall(Left, Waiting, F, Sum + C, Main)
            end
    end.

cham_start(Mall, Color) ->
    Mall ! {meet, self(), Color},
    cham_loop(Mall, Color, 0).

cham_loop(Mall, Color, Count) ->
    receive
        {meet, Other, OtherColor} ->
            New = complement(Color, OtherColor),
            Other ! {change, New},
            Mall ! {meet, self(), New},
            cham_loop(Mall, New, Count + 1);
        {change, New} ->
            Mall ! {meet, self(), New},
            cham_loop(Mall, New, Count + 1);
        stop ->
            Mall ! {meetings, Count}
    end.

complement(C, C) -> C;
complement(blue, red) -> yellow;
complement(blue, yellow) -> red;
complement(red, blue) -> yellow;
complement(red, yellow) -> blue;
complement(yellow, blue) -> red;
complement(yellow, red) -> blue.

%% ---------------------------------------------------------------------------------------------
%% big

big_init(I, N, Main) ->
    rand:seed(exsss, {1, 2, I}),
    receive
        {go, Peers} ->
            big_ping(Peers),
            big_loop(Peers, N - 1, Main, 1, 0, 0)
    end.

big_ping(Peers) ->
    element(rand:uniform(tuple_size(Peers)), Peers) ! {ping, self()}.

%% Left: pings still to send; Sent/Pongs/Answered: statistics for the final check.
big_loop(Peers, Left, Main, Sent, Pongs, Answered) ->
    receive
        {ping, From} ->
            From ! pong,
            big_loop(Peers, Left, Main, Sent, Pongs, Answered + 1);
        pong when Left > 0 ->
            big_ping(Peers),
            big_loop(Peers, Left - 1, Main, Sent + 1, Pongs + 1, Answered);
        pong ->
            Main ! {self(), big_done},
            big_loop(Peers, Left, Main, Sent, Pongs + 1, Answered);
        {stop, From} ->
            From ! {self(), big_stats, Sent, Pongs, Answered}
    end.
