# scikit-learn's LogisticRegression on the features bench/linear-probe.ts exported (Debian: python3-sklearn):
#   python3 bench/linear-probe-sklearn.py DIR C [MAX_ITER]
# Prints the test accuracy and the objective sum(CE) + ||W||^2 / (2C) on the training set, which
# bench/linear-probe.ts prints too, so a difference in accuracy can be told apart from an unconverged fit.
import sys, time
import numpy as np
from scipy.special import logsumexp
from sklearn.linear_model import LogisticRegression

d, C = sys.argv[1], float(sys.argv[2])
max_iter = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
x_train, x_test = np.load(f'{d}/x_train.npy').astype(np.float64), np.load(f'{d}/x_test.npy').astype(np.float64)
y_train, y_test = np.load(f'{d}/y_train.npy').ravel().astype(int), np.load(f'{d}/y_test.npy').ravel().astype(int)
t = time.time()
clf = LogisticRegression(C=C, multi_class='multinomial', solver='lbfgs', max_iter=max_iter).fit(x_train, y_train)
seconds = time.time() - t
z = x_train @ clf.coef_.T + clf.intercept_
objective = float((logsumexp(z, axis=1) - z[np.arange(len(y_train)), y_train]).sum() + (clf.coef_ ** 2).sum() / (2 * C))
print({'C': C, 'max_iter': max_iter, 'seconds': round(seconds, 2), 'iterations': int(clf.n_iter_[0]),
       'objective': objective, 'test': float((clf.predict(x_test) == y_test).mean())}, flush=True)
